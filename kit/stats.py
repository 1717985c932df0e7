"""The statistics of experiment reports and of people's verdicts, pure numpy (no I/O): bootstrap intervals of
a mean and of a paired difference, pass rate, p50/p95; a Bradley–Terry leaderboard from pairwise votes; and
the judge measured against people (Spearman ρ, Cohen's κ, Kendall τ-b, pairwise agreement, best threshold).

Every interval is a 95 % percentile bootstrap, seeded (same data and seed, same interval). A resample is
drawn as multinomial counts over the observations (how often each one is drawn), so each statistic is
written once as a function of those counts, vectorized over resamples; the point estimate is the same
function at counts of one (equal observations may be grouped, their counts drawn together). Pairs (judge
score, people's stars; two sides of a paired difference) are resampled together. An undefined value (no
data, a constant side) is NaN; `resamples=0` gives the estimate alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 1000
ELO_SCALE = 400 / np.log(10)  # 400 strength points = 10:1 odds, as chess and LMArena print them
ELO_CENTER = 1000.0
_CELLS_PER_CHUNK = 2_000_000  # resample counts held at once (resamples × observations)

Statistic = Callable[[np.ndarray], np.ndarray]  # counts (resamples, n) → one value per resample


@dataclass(frozen=True)
class Interval:
    """An estimate, its 95 % bootstrap interval and how many observations it rests on."""

    estimate: float
    low: float
    high: float
    count: int


def _counts(weights: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples as counts per observation (or per group of equal ones, `weights` its size), in
    chunks that bound memory."""
    rng = np.random.default_rng(seed)
    n = int(weights.sum())
    step = max(1, _CELLS_PER_CHUNK // len(weights))
    for start in range(0, resamples, step):
        yield rng.multinomial(n, weights / n, size=min(step, resamples - start)).astype(float)


def _bounds(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile method: the central `confidence` share of the resampled values (NaNs left out)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _interval(statistic: Statistic, weights: np.ndarray, resamples: int, seed: int, confidence: float) -> Interval:
    """`statistic` at `weights` (one per observation, or the sizes of groups of equal ones) and its interval."""
    if not len(weights):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = float(statistic(weights[None].astype(float))[0])
        values = np.concatenate([np.empty(0), *(statistic(c) for c in _counts(weights, resamples, seed))])
    return Interval(estimate, *_bounds(values, confidence), int(weights.sum()))


def _array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def _paired(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _array(x), _array(y)
    if len(x) != len(y):
        raise ValueError(f"paired values differ in length: {len(x)} and {len(y)}")
    return x, y


def _distinct(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (x, y) pairs and how often each occurs: resampling them is resampling the observations."""
    pairs, sizes = np.unique(np.stack([x, y], axis=1), axis=0, return_counts=True)
    return pairs[:, 0], pairs[:, 1], sizes


# --- one sample ------------------------------------------------------------------------------------------
def mean_interval(
    values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """The mean with its percentile-bootstrap interval."""
    x = _array(values)
    return _interval(lambda c: c @ x / c.sum(1), np.ones(len(x)), resamples, seed, confidence)


def paired_difference_interval(
    values: Sequence[float],
    baseline: Sequence[float],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Mean of `values[i] - baseline[i]` (the same rows under two variants) with a paired percentile-bootstrap
    interval: each resample draws rows, so both sides share its indices."""
    x, y = _paired(values, baseline)
    return mean_interval(x - y, resamples=resamples, seed=seed, confidence=confidence)


def pass_rate(
    scores: Sequence[float],
    threshold: float,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """The share of scores at or above `threshold`, with its bootstrap interval."""
    return mean_interval(_array(scores) >= threshold, resamples=resamples, seed=seed, confidence=confidence)


def quantile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0–1) by linear interpolation between order statistics (Hyndman–Fan type 7, numpy's
    and Excel's PERCENTILE.INC default): position (n-1)·q in the sorted values. NaN when empty."""
    x = _array(values)
    return float(np.quantile(x, q)) if len(x) else float("nan")


def p50_p95(values: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile, by `quantile`'s rule."""
    return quantile(values, 0.5), quantile(values, 0.95)


# --- the leaderboard -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Standing:
    """One model's (or variant's) place: Bradley–Terry strength on the Elo scale with its 95 % interval,
    votes it took part in, and its win rate (a tie counts half)."""

    name: str
    strength: float
    low: float
    high: float
    votes: int
    wins: int
    losses: int
    ties: int
    win_rate: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x))


def _bradley_terry(first: np.ndarray, second: np.ndarray, table: np.ndarray, models: int, prior: float) -> np.ndarray:
    """Log-strengths (resamples, models), centered at 0, from per-pair outcome counts (resamples, pairs, 3:
    first won, second won, tie): the maximum-likelihood Bradley–Terry fit, P(i beats j) = σ(θi − θj), by
    Newton–Raphson on the log-likelihood, vectorized over resamples (a few steps, where Hunter's MM
    algorithm takes thousands on 100,000 votes). A tie is half a win to each side; `prior` adds that many
    virtual ties of each model against one of strength 0, so a model that never won (or never lost), or
    votes that leave models unconnected, still give finite strengths. With `prior=0` (the plain maximum-
    likelihood fit), a resample without a finite fit moves at most 2 nats a step for 100 steps."""
    pair_models = np.zeros((len(first), models))
    pair_models[np.arange(len(first)), first] = 1
    pair_models[np.arange(len(second)), second] = -1  # row k: e_first − e_second
    games = table.sum(2)
    first_wins = table[:, :, 0] + table[:, :, 2] / 2
    theta = np.zeros((table.shape[0], models))
    for _ in range(100):
        expected = _sigmoid(theta @ pair_models.T)
        to_self = _sigmoid(theta)
        gradient = (first_wins - games * expected) @ pair_models + prior * (0.5 - to_self)
        weight = games * expected * (1 - expected)
        information = (pair_models.T[None] * weight[:, None, :]) @ pair_models
        information += np.eye(models) * (prior * to_self * (1 - to_self))[:, None, :]
        if prior == 0:  # strengths are fixed up to a shift: solve for the centered step
            information += 1 / models + np.eye(models) * 1e-12  # (the ridge: a resample a model swept)
        step = np.linalg.solve(information, gradient[..., None])[..., 0]
        largest = np.abs(step).max()
        theta += step if largest <= 2 else step * (2 / largest)  # far from the fit: at most 2 nats a step
        if largest < 1e-9:
            break
    return theta - theta.mean(1, keepdims=True)


def _fit_exists(cells: dict[tuple[int, int], list[int]], models: int) -> bool:
    """Ford's (1957) condition for a finite maximum-likelihood fit: each model reaches every other through a
    chain of "won against" (a tie counts both ways)."""
    reach = np.eye(models, dtype=int)
    for (i, j), (first, second, ties) in cells.items():
        reach[i, j] |= first + ties > 0
        reach[j, i] |= second + ties > 0
    for _ in range(models.bit_length()):
        reach = (reach @ reach > 0).astype(int)
    return bool(reach.all())


def leaderboard(
    votes: Iterable[tuple[str, str, str]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    prior: float = 1.0,
    confidence: float = CONFIDENCE,
) -> list[Standing]:
    """Models ranked best first from pairwise votes `(a, b, winner)`, `winner` one of "a", "b", "tie".

    Bradley–Terry strengths (`_bradley_terry`) on the Elo scale: 1000 + 400·log10 of the strength over the
    models' geometric mean. The 95 % intervals bootstrap the votes: the table of counts per pair and outcome
    is resampled as a multinomial over its cells (the same as redrawing the votes) and refitted, all
    resamples at once."""
    tally = Counter(votes)
    names = sorted({name for a, b, _ in tally for name in (a, b)})
    index = {name: i for i, name in enumerate(names)}
    cells: dict[tuple[int, int], list[int]] = {}
    record = {name: [0, 0, 0] for name in names}  # wins, losses, ties
    for (a, b, winner), count in tally.items():
        if a == b or winner not in ("a", "b", "tie"):
            raise ValueError(f"not a vote: {a!r} against {b!r}, winner {winner!r}")
        outcome = {"a": 0, "b": 1, "tie": 2}[winner]
        if index[a] > index[b]:
            a, b, outcome = b, a, (1, 0, 2)[outcome]
        cells.setdefault((index[a], index[b]), [0, 0, 0])[outcome] += count
        for name, result in ((a, outcome), (b, (1, 0, 2)[outcome])):
            record[name][result] += count
    if not names:
        return []
    if prior == 0 and not _fit_exists(cells, len(names)):
        raise ValueError("with prior=0 every model must have won and lost, in votes that connect them all")
    pairs = np.array(list(cells), dtype=int).reshape(-1, 2)
    table = np.array(list(cells.values()), dtype=float).reshape(1, -1, 3)
    first, second = pairs[:, 0], pairs[:, 1]
    estimate = _bradley_terry(first, second, table, len(names), prior)[0] * ELO_SCALE + ELO_CENTER
    rng = np.random.default_rng(seed)
    total = int(table.sum())
    draws = rng.multinomial(total, table.reshape(-1) / total, size=resamples).reshape(resamples, -1, 3)
    resampled = np.empty((0, len(names)))  # resamples=0: the strengths alone, NaN intervals
    if resamples:
        resampled = _bradley_terry(first, second, draws.astype(float), len(names), prior) * ELO_SCALE + ELO_CENTER
    standings = []
    for i, name in enumerate(names):
        wins, losses, ties = record[name]
        played = wins + losses + ties
        low, high = _bounds(resampled[:, i], confidence)
        rate = (wins + ties / 2) / played
        standings.append(Standing(name, float(estimate[i]), low, high, played, wins, losses, ties, rate))
    return sorted(standings, key=lambda s: (-s.strength, s.name))


# --- the judge measured against people -------------------------------------------------------------------
def _weighted_ranks(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share the mean of their ranks) of each observation within each resample,
    where observation i appears counts[:, i] times."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    new_value = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    starts, group = np.flatnonzero(new_value), np.cumsum(new_value) - 1
    in_group = np.add.reduceat(counts[:, order], starts, axis=1)
    below = np.cumsum(in_group, axis=1) - in_group
    ranks = np.empty_like(counts)
    ranks[:, order] = (below + (in_group + 1) / 2)[:, group]
    return ranks


def _weighted_pearson(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = counts.sum(1, keepdims=True)
    dx = x - (counts * x).sum(1, keepdims=True) / total
    dy = y - (counts * y).sum(1, keepdims=True) / total
    return (counts * dx * dy).sum(1) / np.sqrt((counts * dx**2).sum(1) * (counts * dy**2).sum(1))


def spearman(
    x: Sequence[float], y: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """Spearman's ρ: Pearson's correlation of the average ranks (ties share their mean rank)."""
    x, y, sizes = _distinct(*_paired(x, y))

    def rho(c: np.ndarray) -> np.ndarray:
        return _weighted_pearson(_weighted_ranks(x, c), _weighted_ranks(y, c), c)

    return _interval(rho, sizes, resamples, seed, confidence)


def kendall_tau_b(
    x: Sequence[float], y: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """Kendall's τ-b: (concordant − discordant pairs) / √((pairs − tied in x)(pairs − tied in y)), counted
    over all pairs as quadratic forms of the counts (memory grows with the square of the distinct (x, y)
    pairs: a few thousand when scores are continuous, a few hundred for integer scores against stars)."""
    x, y, sizes = _distinct(*_paired(x, y))
    sign = (np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])).astype(float)
    same_x = (x[:, None] == x[None, :]).astype(float)
    same_y = (y[:, None] == y[None, :]).astype(float)

    def tau(c: np.ndarray) -> np.ndarray:
        n = c.sum(1)
        pairs = n * (n - 1) / 2
        tied_x = (((c @ same_x) * c).sum(1) - n) / 2
        tied_y = (((c @ same_y) * c).sum(1) - n) / 2
        return ((c @ sign) * c).sum(1) / 2 / np.sqrt((pairs - tied_x) * (pairs - tied_y))

    return _interval(tau, sizes, resamples, seed, confidence)


def _kappa(a: np.ndarray, b: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = counts.sum(1)
    observed = counts @ (a == b) / total
    share_a, share_b = counts @ a / total, counts @ b / total
    chance = share_a * share_b + (1 - share_a) * (1 - share_b)
    return (observed - chance) / (1 - chance)


def cohen_kappa(
    a: Sequence[bool], b: Sequence[bool], *, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """Cohen's κ of two binary raters (e.g. "passes the threshold" and "rated 4 or 5"): (observed agreement −
    chance agreement) / (1 − chance agreement), chance from each rater's share of yes."""
    x, y, sizes = _distinct(*_paired(a, b))
    return _interval(lambda c: _kappa(x, y, c), sizes, resamples, seed, confidence)


def preference_agreement(
    score_a: Sequence[float],
    score_b: Sequence[float],
    winners: Sequence[str],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """How often the judge prefers what people preferred: over the votes with a winner ("a" or "b"; ties
    are left out), the share where the judge scored that side higher, an equal score counting half."""
    a, b = _paired(score_a, score_b)
    if len(winners) != len(a) or not set(winners) <= {"a", "b", "tie"}:
        raise ValueError(f"{len(a)} pairs need as many winners, each 'a', 'b' or 'tie'")
    people = np.array([{"a": 1.0, "b": -1.0}.get(w, 0.0) for w in winners])
    decided = people != 0
    agreed = (np.sign(a - b)[decided] * people[decided] + 1) / 2
    shares, sizes = np.unique(agreed, return_counts=True)  # 0, ½ or 1: resampled as three groups, not vote by vote
    return _interval(lambda c: c @ shares / c.sum(1), sizes, resamples, seed, confidence)


@dataclass(frozen=True)
class Threshold:
    """The judge's threshold that agrees best with people, and that agreement (Cohen's κ)."""

    value: float
    kappa: float
    count: int


def best_threshold(
    scores: Sequence[float], liked: Sequence[bool], candidates: Sequence[float] | None = None
) -> Threshold:
    """The threshold t maximizing Cohen's κ between "score ≥ t" and people's `liked`, over `candidates`
    (default: every distinct score); on a tie, the lowest. NaN when no threshold gives a defined κ."""
    x, people = _paired(scores, liked)
    values = np.unique(x if candidates is None else _array(candidates))
    if not len(values):
        return Threshold(float("nan"), float("nan"), len(x))
    with np.errstate(divide="ignore", invalid="ignore"):
        kappas = np.array([_kappa((x >= t).astype(float), people, np.ones((1, len(x))))[0] for t in values])
    if not np.isfinite(kappas).any():
        return Threshold(float("nan"), float("nan"), len(x))
    best = int(np.nanargmax(kappas))
    return Threshold(float(values[best]), float(kappas[best]), len(x))
