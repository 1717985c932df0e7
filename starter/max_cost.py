"""A run's dollar budget, checked and quoted before anything starts (the words: `workflows.budget`):
`cost_limit_for` for any caller (the CLI's `--max-cost`, the API's `max_cost_usd`), `cost_limit` for the CLI."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from models.catalog import Catalog, ModelChoice, load_catalog
from models.image import ImageOptions
from models.pricing import Unpriced, quote, run_prices
from models.settings import Settings
from models.usage import CostLimit
from starter.common import UsageError


class BadBudget(ValueError):
    """A budget that cannot be used. `of_value`: the message speaks of the amount (the caller names where
    it came from, e.g. `--max-cost`); otherwise of the configuration (a model without a price)."""

    def __init__(self, message: str, of_value: bool = True) -> None:
        super().__init__(message)
        self.of_value = of_value


def add_max_cost(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-cost", type=float, default=None, metavar="USD", help="dollar budget (default ATELIER_MAX_COST_USD)"
    )


def cost_limit_for(
    value: float | None,
    settings: Settings,
    image_options: Sequence[ImageOptions],
    references: int = 0,
    first: tuple[str, ...] = ("text",),
    models: ModelChoice | None = None,
    catalog: Catalog | None = None,
) -> CostLimit | None:
    """The run's dollar budget, `value` or else ATELIER_MAX_COST_USD (None: no budget), with its per-call
    reservations at the prices of the run's `models` (unset: the catalog's defaults; `catalog`: the caller's,
    else the settings' `load_catalog`); a budget that cannot cover the run's `first` calls is refused
    (`BadBudget`)."""
    value = value if value is not None else settings.max_cost_usd
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise BadBudget(f"must be a number of US dollars, 0 or more (got {value})")
    try:
        prices = run_prices(catalog or load_catalog(settings), models or ModelChoice(), settings.prices)
        limit = quote(settings, value, list(image_options), references, prices)
    except Unpriced as exc:
        raise BadBudget(str(exc), of_value=False) from exc
    if (needed := sum(limit.quote(kind) for kind in first)) > value:
        raise BadBudget(f"${value:g} does not cover the first step, which may cost up to ${needed:.4f}")
    return limit


def cost_limit(
    args: Any,
    settings: Settings,
    image_options: Sequence[ImageOptions],
    references: int = 0,
    first: tuple[str, ...] = ("text",),
    models: ModelChoice | None = None,
) -> CostLimit | None:
    """`cost_limit_for` the run's `--max-cost`, at its `models`' prices; a budget it refuses is a usage error."""
    try:
        return cost_limit_for(args.max_cost, settings, image_options, references, first, models)
    except BadBudget as exc:
        raise UsageError(f"--max-cost {exc}" if exc.of_value else str(exc)) from exc
