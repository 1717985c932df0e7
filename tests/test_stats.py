"""kit/stats.py against independent references: hand-computed values, formulas other than the module's
(Spearman by Σd², κ from the confusion matrix, τ-b by counting pairs, Bradley–Terry by its closed form and
its likelihood equations), seeded simulations for the leaderboard's order and the intervals' coverage."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from kit import stats


def simulated_votes(truth: dict[str, float], count: int, seed: int, ties: float = 0.0) -> list[tuple[str, str, str]]:
    """`count` votes between random pairs, A winning with probability σ(θA − θB) (θ in natural log units)."""
    rng = np.random.default_rng(seed)
    names = list(truth)
    votes = []
    for _ in range(count):
        a, b = rng.choice(len(names), size=2, replace=False)
        if rng.random() < ties:
            winner = "tie"
        else:
            winner = "a" if rng.random() < 1 / (1 + math.exp(truth[names[b]] - truth[names[a]])) else "b"
        votes.append((names[a], names[b], winner))
    return votes


def concordance(x: list[float], y: list[float]) -> float:
    """Kendall's τ-b counted pair by pair."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        tied_x += sx == 0
        tied_y += sy == 0
        concordant += sx * sy > 0
        discordant += sx * sy < 0
    pairs = len(x) * (len(x) - 1) / 2
    return (concordant - discordant) / math.sqrt((pairs - tied_x) * (pairs - tied_y))


# --- one sample ------------------------------------------------------------------------------------------
def test_mean_interval_is_the_mean_with_about_the_normal_width():
    values = np.random.default_rng(3).normal(50, 10, 400)
    interval = stats.mean_interval(values.tolist(), resamples=2000)
    normal_half_width = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert interval.estimate == pytest.approx(sum(values) / len(values))
    assert interval.count == 400
    assert interval.low < interval.estimate < interval.high
    assert (interval.high - interval.low) / 2 == pytest.approx(normal_half_width, rel=0.15)


def test_paired_difference_resamples_both_sides_with_the_same_rows():
    baseline = np.random.default_rng(4).uniform(0, 100, 60)
    shifted = stats.paired_difference_interval((baseline + 3).tolist(), baseline.tolist())
    assert (shifted.estimate, shifted.low, shifted.high) == pytest.approx((3, 3, 3))  # unpaired: ± tens
    noisy = baseline + np.random.default_rng(5).normal(2, 1, 60)
    interval = stats.paired_difference_interval(noisy, baseline)
    assert interval.estimate == pytest.approx(float(np.mean(noisy - baseline)))
    assert interval.low < interval.estimate < interval.high < interval.estimate + 1
    with pytest.raises(ValueError):
        stats.paired_difference_interval([1, 2], [1])


def test_the_same_seed_gives_the_same_intervals():
    values = [float(v) for v in range(30)]
    votes = simulated_votes({"a": 0.0, "b": 0.5, "c": 1.0}, 300, seed=1)
    assert stats.mean_interval(values, seed=7) == stats.mean_interval(values, seed=7)
    assert stats.mean_interval(values, seed=7) != stats.mean_interval(values, seed=8)
    assert stats.spearman(values, values[::-1], seed=2) == stats.spearman(values, values[::-1], seed=2)
    assert stats.leaderboard(votes, seed=3) == stats.leaderboard(votes, seed=3)
    assert stats.leaderboard(votes, seed=3) != stats.leaderboard(votes, seed=4)


def test_pass_rate_and_quantiles_by_hand():
    rate = stats.pass_rate([70, 80, 85, 90, 95], 85)
    assert rate.estimate == pytest.approx(0.6)
    assert 0 <= rate.low < 0.6 < rate.high <= 1
    values = list(range(1, 11))
    assert stats.p50_p95(values) == pytest.approx((5.5, 9.55))  # positions 4.5 and 8.55 of 0..9
    assert stats.quantile([4.0], 0.95) == 4.0
    assert math.isnan(stats.quantile([], 0.5))
    assert math.isnan(stats.mean_interval([]).estimate)
    alone = stats.mean_interval([1.0, 2.0], resamples=0)
    assert alone.estimate == 1.5 and math.isnan(alone.low) and math.isnan(alone.high)


# --- the judge measured ----------------------------------------------------------------------------------
def test_spearman_equals_the_rank_difference_formula_and_handles_ties():
    rng = np.random.default_rng(6)
    x, y = rng.permutation(25), rng.permutation(25)
    by_formula = 1 - 6 * sum((int(a) - int(b)) ** 2 for a, b in zip(x, y, strict=True)) / (25 * (25**2 - 1))
    rho = stats.spearman(x.tolist(), y.tolist())
    assert rho.estimate == pytest.approx(by_formula)
    assert rho.low < rho.estimate < rho.high and rho.count == 25
    # ranks 1, 2.5, 2.5, 4 against 1, 3, 2, 4: Σ dx·dy = 4.5, Σ dx² = 4.5, Σ dy² = 5
    assert stats.spearman([1, 2, 2, 3], [1, 3, 2, 4]).estimate == pytest.approx(3 / math.sqrt(10))
    assert math.isnan(stats.spearman([1, 1, 1], [1, 2, 3]).estimate)


def test_cohen_kappa_equals_the_confusion_matrix_formula():
    table = {(True, True): 20, (True, False): 5, (False, True): 10, (False, False): 15}
    a = [first for (first, _), n in table.items() for _ in range(n)]
    b = [second for (_, second), n in table.items() for _ in range(n)]
    observed = (20 + 15) / 50
    chance = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    kappa = stats.cohen_kappa(a, b)
    assert kappa.estimate == pytest.approx((observed - chance) / (1 - chance)) == pytest.approx(0.4)
    assert kappa.low < 0.4 < kappa.high and kappa.count == 50


def test_kendall_tau_b_equals_counting_pairs():
    assert stats.kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 4]).estimate == pytest.approx(5 / math.sqrt(30))
    rng = np.random.default_rng(8)
    scores = rng.integers(0, 10, 80).tolist()
    stars = [min(5, max(1, round(s / 2 + rng.normal(0, 1)))) for s in scores]
    tau = stats.kendall_tau_b(scores, stars)
    assert tau.estimate == pytest.approx(concordance(scores, stars))
    assert tau.low < tau.estimate < tau.high


def test_preference_agreement_counts_decided_votes_and_half_for_equal_scores():
    agreement = stats.preference_agreement(
        [90, 40, 70, 60, 50], [10, 80, 70, 30, 20], ["a", "a", "b", "tie", "b"], resamples=200
    )
    assert agreement.count == 4  # the tie is left out
    assert agreement.estimate == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    with pytest.raises(ValueError, match="winners"):
        stats.preference_agreement([1], [2], ["left"])


def test_best_threshold_maximizes_kappa():
    scores = list(range(10, 100, 5))
    liked = [s >= 62 for s in scores]
    best = stats.best_threshold(scores, liked)
    assert (best.value, best.kappa, best.count) == (65, pytest.approx(1.0), len(scores))
    noisy = liked[:]
    noisy[0] = True  # one disliked picture people liked anyway: 65 still agrees best
    assert stats.best_threshold(scores, noisy).value == 65
    assert stats.best_threshold(scores, noisy, candidates=[20, 50]).value == 50


# --- the leaderboard -------------------------------------------------------------------------------------
def test_two_models_match_the_closed_form():
    votes = [("x", "y", "a")] * 3 + [("y", "x", "a")] + [("x", "y", "tie")]
    board = stats.leaderboard(votes, prior=0)
    gap = 400 * math.log10(3.5 / 1.5)  # wins with a tie as half: 3.5 to 1.5
    assert [s.name for s in board] == ["x", "y"]
    assert [s.strength for s in board] == pytest.approx([1000 + gap / 2, 1000 - gap / 2])
    assert (board[0].votes, board[0].wins, board[0].losses, board[0].ties) == (5, 3, 1, 1)
    assert board[0].win_rate == pytest.approx(0.7)


def test_strengths_solve_the_likelihood_equations():
    votes = simulated_votes({"a": 0.0, "b": 0.4, "c": 0.9, "d": 1.5}, 600, seed=9, ties=0.1)
    board = {s.name: s for s in stats.leaderboard(votes, prior=0, resamples=50)}
    theta = {name: (s.strength - 1000) * math.log(10) / 400 for name, s in board.items()}
    for name, standing in board.items():  # observed wins (a tie half) = expected wins, for each model
        expected = sum(
            1 / (1 + math.exp(theta[b if a == name else a] - theta[name])) for a, b, _ in votes if name in (a, b)
        )
        assert standing.wins + standing.ties / 2 == pytest.approx(expected, rel=1e-6)
    assert sum(theta.values()) == pytest.approx(0, abs=1e-9)


def test_the_leaderboard_recovers_a_known_order():
    truth = {"model-a": -1.0, "model-b": -0.4, "model-c": 0.1, "model-d": 0.5, "model-e": 1.2}
    board = stats.leaderboard(simulated_votes(truth, 2000, seed=10, ties=0.1), resamples=200)
    names = list(truth)
    fitted = {s.name: s.strength for s in board}
    assert concordance([truth[n] for n in names], [fitted[n] for n in names]) >= 0.9
    assert [s.strength for s in board] == sorted((s.strength for s in board), reverse=True)
    assert all(s.low < s.strength < s.high for s in board)
    assert sum(s.votes for s in board) == 2 * 2000


def test_an_unbeaten_model_has_a_finite_strength_and_bad_votes_are_refused():
    board = stats.leaderboard([("top", "mid", "a"), ("top", "low", "a"), ("mid", "low", "a"), ("low", "mid", "b")])
    assert [s.name for s in board] == ["top", "mid", "low"]
    assert all(math.isfinite(v) for s in board for v in (s.strength, s.low, s.high))
    with pytest.raises(ValueError, match="prior=0"):
        stats.leaderboard([("a", "b", "a"), ("b", "a", "a"), ("c", "d", "a"), ("d", "c", "a")], prior=0)
    with pytest.raises(ValueError, match="winner 'c'"):
        stats.leaderboard([("a", "b", "c")])
    with pytest.raises(ValueError, match="against"):
        stats.leaderboard([("a", "a", "tie")])
    assert stats.leaderboard([]) == []


# --- coverage --------------------------------------------------------------------------------------------
def test_mean_intervals_cover_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(11)
    covered = 0
    for repetition in range(100):
        interval = stats.mean_interval(rng.exponential(2.0, 60), resamples=400, seed=repetition)
        covered += interval.low <= 2.0 <= interval.high
    assert covered >= 85


def test_leaderboard_intervals_cover_the_truth_at_about_the_nominal_rate():
    truth = {"a": -0.6, "b": -0.1, "c": 0.2, "d": 0.5}
    center = sum(truth.values()) / len(truth)
    elo = {name: 1000 + 400 / math.log(10) * (theta - center) for name, theta in truth.items()}
    covered = total = 0
    for repetition in range(30):
        board = stats.leaderboard(simulated_votes(truth, 600, seed=100 + repetition), resamples=200)
        covered += sum(s.low <= elo[s.name] <= s.high for s in board)
        total += len(board)
    assert covered >= 0.85 * total
