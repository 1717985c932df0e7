"""What people's verdicts say, from the database alone (what each artifact was is recorded beside them): the
leaderboard of models (or of an experiment's variants) and each evaluator model measured against people. The
statistics are `kit.stats`'; the votes and ratings go in sorted, so the same verdicts give the same intervals."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from typing import Any

from kit import stats
from kit.db import Database
from kit.db.ratings import Ratings
from models.ratings import LIKED, Entry, Estimate, Evaluator, JudgeReport, Leaderboard, Point, Threshold

LEADERBOARD_METHOD = (
    f"Bradley–Terry strengths on the Elo scale (a tie half a win, a prior of one virtual tie against a model of "
    f"strength 1000), 95% intervals from {stats.RESAMPLES} bootstrap resamples of the votes (seed 0, votes "
    f"tallied in sorted order); mean stars with a 95% percentile-bootstrap interval (seed 0)"
)
JUDGE_METHOD = (
    f"per evaluator model: Spearman's rho of its score and the stars; Cohen's kappa of 'score >= the run's "
    f"threshold' and 'rated {LIKED} or 5'; agreement: over votes with a winner between two artifacts it scored, "
    f"the share where it scored the winner higher (equal: half); 95% bootstrap intervals, {stats.RESAMPLES} "
    f"resamples, seed 0; the best threshold maximizes kappa over the scores seen"
)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6) + 0.0  # (never -0.0)


def estimate(interval: stats.Interval) -> Estimate:
    return Estimate(
        estimate=_number(interval.estimate),
        low=_number(interval.low),
        high=_number(interval.high),
        count=interval.count,
    )


def _each(counted: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Grouped rows (their last column how many) as one row per verdict, sorted."""
    return sorted(itertools.chain.from_iterable(itertools.repeat(row[:-1], row[-1]) for row in counted))


def leaderboard(db: Database, tenant: str, experiment: str | None = None) -> Leaderboard:
    """Models ranked by the tenant's votes (an experiment's variants, given one), best first; then any rated
    but never voted on, by mean stars."""
    by = "variant" if experiment is not None else "model"
    with db.reading() as session:
        ratings = Ratings(session, tenant)
        votes, rated = _each(ratings.tally(by, experiment)), ratings.stars_by(experiment)
    stars: dict[str, list[int]] = defaultdict(list)
    for model, variant, _, _, _, given, count in rated:
        if (named := variant if by == "variant" else model) is not None:
            stars[named] += [given] * count
    entries = [
        Entry(
            name=standing.name,
            strength=_number(standing.strength),
            low=_number(standing.low),
            high=_number(standing.high),
            votes=standing.votes,
            wins=standing.wins,
            losses=standing.losses,
            ties=standing.ties,
            win_rate=_number(standing.win_rate),
        )
        for standing in stats.leaderboard(votes)
    ]
    voted = {entry.name for entry in entries}
    entries += [Entry(name=named) for named in sorted(stars) if named not in voted]
    for entry in entries:
        entry.mean_stars = estimate(stats.mean_interval(sorted(stars.get(entry.name, []))))
    unvoted = sorted(entries[len(voted) :], key=lambda e: (-(e.mean_stars.estimate or 0), e.name))
    return Leaderboard(
        by=by,
        experiment=experiment,
        votes=len(votes),
        ratings=sum(len(given) for given in stars.values()),
        method=LEADERBOARD_METHOD,
        entries=entries[: len(voted)] + unvoted,
    )


def judge(db: Database, tenant: str, experiment: str | None = None) -> JudgeReport:
    """Each evaluator model that scored something the tenant's people rated or voted on, against them."""
    with db.reading() as session:
        ratings = Ratings(session, tenant)
        judged, grouped = ratings.judged(experiment), ratings.stars_by(experiment)
    rated: dict[str, list[tuple[float, int, bool]]] = defaultdict(list)  # judge → (score, stars, passed)
    for _, _, name, score, threshold, stars, count in grouped:
        if name is not None and score is not None:
            rated[name] += [(score, stars, threshold is not None and score >= threshold)] * count
    voted: dict[str, list[tuple[float, float, str]]] = defaultdict(list)  # judge → (score a, score b, winner)
    for name, score_a, score_b, winner, count in judged:
        voted[name] += [(score_a, score_b, winner)] * count
    names = sorted(rated.keys() | voted.keys())
    evaluators = [_evaluator(name, sorted(rated.get(name, [])), sorted(voted.get(name, []))) for name in names]
    return JudgeReport(experiment=experiment, method=JUDGE_METHOD, evaluators=evaluators)


def _evaluator(name: str, rated: list[tuple[float, int, bool]], voted: list[tuple[float, float, str]]) -> Evaluator:
    scores, stars = [r[0] for r in rated], [r[1] for r in rated]
    liked = [s >= LIKED for s in stars]
    best = stats.best_threshold(scores, liked)
    seen = Counter(zip(scores, stars, strict=True))
    agreement = stats.preference_agreement([v[0] for v in voted], [v[1] for v in voted], [v[2] for v in voted])
    return Evaluator(
        judge=name,
        spearman=estimate(stats.spearman(scores, stars)),
        kappa=estimate(stats.cohen_kappa([r[2] for r in rated], liked)),
        agreement=estimate(agreement),
        best_threshold=Threshold(value=_number(best.value), kappa=_number(best.kappa), count=best.count),
        points=[Point(score=s, stars=n, count=c) for (s, n), c in sorted(seen.items())],
    )
