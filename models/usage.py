"""What a run's model calls used and cost: tokens and images per model, priced by a configurable table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, computed_field
from temporalio.exceptions import ApplicationError

from models.endpoints import Kind

V = TypeVar("V")
W = TypeVar("W")
CallKind = Literal["text", "image"]  # every paid call is one or the other (see workflows/budget.py)


class Price(BaseModel):
    """US dollars per million input/output tokens and per image (for models billed per image)."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    per_image: float = Field(0.0, ge=0)

    def cost(self, input_tokens: int, output_tokens: int, images: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6 + (
            images * self.per_image
        )


# List prices when this table was written; override any of them with ATELIER_PRICES (JSON).
DEFAULT_PRICES: dict[str, Price] = {
    "offline": Price(),
    "offline-vivid": Price(),
    "offline-sketch": Price(),
    "gpt-4o": Price(input_per_mtok=2.5, output_per_mtok=10.0),
    "gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.6),
    "gpt-4.1": Price(input_per_mtok=2.0, output_per_mtok=8.0),
    "gpt-4.1-mini": Price(input_per_mtok=0.4, output_per_mtok=1.6),
    "gpt-5": Price(input_per_mtok=1.25, output_per_mtok=10.0),
    "gpt-5-mini": Price(input_per_mtok=0.25, output_per_mtok=2.0),
    "gpt-image-1": Price(input_per_mtok=10.0, output_per_mtok=40.0),
    "gpt-image-1-mini": Price(input_per_mtok=2.5, output_per_mtok=8.0),
    "dall-e-3": Price(per_image=0.08),
}


class ModelUsage(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    cost_usd: float | None = 0.0  # None: the price table has no entry for this model

    def plus(self, other: ModelUsage) -> ModelUsage:
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 6)
        return ModelUsage(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            images=self.images + other.images,
            cost_usd=cost,
        )


class Usage(BaseModel):
    """Model usage of a step or a whole run; the totals are computed from the per-model rows."""

    models: dict[str, ModelUsage] = Field(default_factory=dict)

    def plus(self, other: Usage) -> Usage:
        merged = dict(self.models)
        for model, row in other.models.items():
            merged[model] = merged[model].plus(row) if model in merged else row
        return Usage(models=merged)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def input_tokens(self) -> int:
        return sum(row.input_tokens for row in self.models.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def output_tokens(self) -> int:
        return sum(row.output_tokens for row in self.models.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def images(self) -> int:
        return sum(row.images for row in self.models.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def estimated_cost_usd(self) -> float:
        """The priced models' cost; see `unpriced_models` for those the table lacks."""
        return round(sum(row.cost_usd or 0.0 for row in self.models.values()), 6)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def unpriced_models(self) -> list[str]:
        return sorted(model for model, row in self.models.items() if row.cost_usd is None)

    def summary(self) -> str:
        """One line for people: tokens, images, cost."""
        line = f"{self.input_tokens:,} in / {self.output_tokens:,} out tokens, {self.images} images, "
        line += f"~${self.estimated_cost_usd:.4f}"
        if self.unpriced_models:
            line += f" (no price for {', '.join(self.unpriced_models)})"
        return line


USAGE_DETAIL = "atelier_usage"  # the key under which a failure's details and heartbeats carry usage so far


def usage_detail(usage: Usage) -> dict[str, Any]:
    """Usage as a failure detail or heartbeat field (plain JSON: it decodes without type hints)."""
    return {USAGE_DETAIL: usage.model_dump(mode="json", include={"models"})}


def usage_in(details: Sequence[Any] | None) -> Usage | None:
    """The usage a failure's details (or heartbeat details) carry, the last one found; None when none do."""
    for item in reversed(details or ()):
        if isinstance(item, dict) and isinstance(item.get(USAGE_DETAIL), dict):
            return Usage.model_validate(item[USAGE_DETAIL])
    return None


class Metered(BaseModel, Generic[V]):
    """An activity's result together with the model usage it took, and the catalog id of the model that
    answered (None in results recorded before runs chose their models)."""

    value: V
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None

    def carrying(self, value: W) -> Metered[W]:
        """The same usage with the activity's own result (e.g. the call's reply plus where it was stored)."""
        return Metered(value=value, usage=self.usage, model=self.model)


class ModelRequest(BaseModel):
    """The input of an activity that calls a model: `model` is the run's catalog id for the call's kind
    (`MODEL_KIND`); None: the worker's default, as every run from before runs chose their models."""

    MODEL_KIND: ClassVar[Kind] = "text"  # the catalog kind its model is chosen by

    model: str | None = None


class PaidRequest(ModelRequest):
    """The input of an activity that calls a paid model; `max_cost_usd` is what the run reserved for it."""

    max_cost_usd: float | None = Field(default=None, ge=0)


class CostLimit(BaseModel):
    """A run's dollar budget, the most one call of each kind may cost (its worst case), and the least a
    call may be given when less than its worst case is left (the provider caps it to fit, or refuses)."""

    max_usd: float = Field(ge=0)
    text_call_usd: float = Field(ge=0)
    image_call_usd: float = Field(ge=0)
    text_floor_usd: float | None = Field(default=None, ge=0)  # None: the worst case (runs quoted before floors)
    image_floor_usd: float | None = Field(default=None, ge=0)

    def quote(self, kind: CallKind) -> float:
        return self.image_call_usd if kind == "image" else self.text_call_usd

    def floor(self, kind: CallKind) -> float:
        floor = self.image_floor_usd if kind == "image" else self.text_floor_usd
        return self.quote(kind) if floor is None else min(floor, self.quote(kind))


class BudgetExhausted(ApplicationError):
    """What is left of the dollar budget does not cover the next call."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="BudgetExhausted", non_retryable=True)


class Spend(BaseModel):
    max_usd: float
    spent_usd: float
    reserved_usd: float = 0.0
    exhausted: bool = False
