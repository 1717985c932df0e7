"""Leaderboard benchmark: 100,000 synthetic pairwise votes (10 % ties, winners drawn from known Bradley–Terry
strengths) on 5, 10 and 20 models → `kit.stats.leaderboard`, strengths and 95 % bootstrap intervals.
Printed per model count and bootstrap rounds: the best of 3 wall times (tallying the votes, the fit, the
resampled fits), the widest interval, and Kendall's τ between the fitted and the true order.

    python -m bench.leaderboard [--votes 100000] [--resamples 200 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kit.stats import kendall_tau_b, leaderboard


def synthetic_votes(models: int, count: int, seed: int = 0) -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    """`count` votes between random pairs of `models` with strengths spread evenly over ±1.5 nats."""
    rng = np.random.default_rng(seed)
    names = [f"model-{i:02d}" for i in range(models)]
    truth = np.linspace(-1.5, 1.5, models)
    a = rng.integers(0, models, count)
    b = (a + rng.integers(1, models, count)) % models
    a_wins = rng.random(count) < 1 / (1 + np.exp(truth[b] - truth[a]))
    winners = np.where(rng.random(count) < 0.1, "tie", np.where(a_wins, "a", "b")).tolist()
    votes = list(zip([names[i] for i in a], [names[i] for i in b], winners, strict=True))
    return votes, dict(zip(names, truth.tolist(), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, nargs="+", default=[200, 1000])
    args = parser.parse_args()
    print(f"leaderboard from {args.votes:,} votes (best of 3)")
    print(f"{'models':>6} {'resamples':>9} {'seconds':>8} {'widest ±':>9} {'tau':>5}")
    for models in (5, 10, 20):
        votes, truth = synthetic_votes(models, args.votes)
        for resamples in args.resamples:
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                board = leaderboard(votes, resamples=resamples)
                best = min(best, time.perf_counter() - started)
            widest = max(s.high - s.low for s in board) / 2
            tau = kendall_tau_b([truth[s.name] for s in board], [s.strength for s in board], resamples=0)
            print(f"{models:>6} {resamples:>9} {best:>8.3f} {widest:>9.1f} {tau.estimate:>5.2f}")


if __name__ == "__main__":
    main()
