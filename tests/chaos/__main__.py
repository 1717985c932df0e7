"""`python -m tests.chaos [--trials N] [--seed S]`: the long crash matrix (`make chaos`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import run_trial, table, trials


async def main(count: int, seed: int) -> int:
    outcomes = []
    for trial in trials(count, seed):
        with tempfile.TemporaryDirectory() as tmp:
            outcome = await run_trial(trial, Path(tmp))
        outcomes.append(outcome)
        print(table([outcome]).splitlines()[1], flush=True)
    print(table(outcomes))
    ok = all(o.completed and not o.duplicates and not o.lost for o in outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.trials, args.seed)))
