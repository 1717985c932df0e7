"""`--max-cost`: a run's dollar budget from the command line, checked before anything starts."""

from __future__ import annotations

import argparse
import math
from typing import Any

from activities.providers.pricing import Unpriced, quote
from models.image import ImageOptions
from models.settings import Settings
from models.usage import CostLimit
from starter.common import UsageError


def add_max_cost(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-cost", type=float, default=None, metavar="USD", help="dollar budget (default ATELIER_MAX_COST_USD)"
    )


def cost_limit(
    args: Any, settings: Settings, image_options: list[ImageOptions], references: int = 0, first: tuple = ("text",)
) -> CostLimit | None:
    """The run's dollar budget from `--max-cost` (or ATELIER_MAX_COST_USD) with its per-call reservations;
    a budget that cannot cover the run's `first` calls is refused before anything starts."""
    value = args.max_cost if args.max_cost is not None else settings.max_cost_usd
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--max-cost must be a number of US dollars, 0 or more (got {value})")
    try:
        limit = quote(settings, value, image_options, references)
    except Unpriced as exc:
        raise UsageError(str(exc)) from exc
    if (needed := sum(limit.quote(kind) for kind in first)) > value:
        raise UsageError(f"--max-cost ${value:g} does not cover the first step, which may cost up to ${needed:.4f}")
    return limit
