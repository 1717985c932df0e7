"""Planning an experiment, one way for the API and the CLI: every cell (row × variant) validated through the
pipeline's request model before anything starts, a problem named by where it came from
(`variants[1].set.threshold`, `dataset.rows[3].prompt`, `base.max_iterations`), each variant's per-cell dollar
budget quoted by the caller's `Pricing`, and the `ExperimentPlan` the workflow runs.

A cell's budget is the base's `max_cost_usd`, else ATELIER_MAX_COST_USD, else (with an experiment budget) the
experiment's `max_cost_usd / max_parallel`, so that many cells fit at once; without any, cells have none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from models.api import RunOptions
from models.catalog import Catalog, ModelChoice
from models.experiment import (
    MAX_CELLS,
    ROW_LABEL,
    ExperimentPlan,
    ExperimentRequest,
    PlannedVariant,
    Variant,
    set_path,
)
from models.pipelines import PIPELINES, PipelineSpec
from models.settings import Settings
from models.usage import CostLimit
from models.validation import field_problems

# A cell's request (its budget in `max_cost_usd`) → the job the server would start for it, priced (as JSON).
Pricing = Callable[[BaseModel], Awaitable[dict[str, Any]]]
BASE_OPTIONS = {"max_cost_usd"}  # the one create option a base may carry: each cell's budget


class PlanProblem(ValueError):
    """Bad input, naming the request's field (`variants[1].set.threshold`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def job_paths(spec: PipelineSpec) -> set[str]:
    """The top-level fields a row or a variant may set: the job's, not the create's options."""
    return set(spec.request.model_fields) - set(RunOptions.model_fields)


def _check_path(model: type[BaseModel], path: str, where: str) -> None:
    """A dotted path through the model's fields (nested models included), or a problem naming `where`."""
    current: Any = model
    for part in path.split("."):
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            raise PlanProblem(where, f"not a field of the {model.__name__.removesuffix('Request').lower()} job")
        current = _model_in(fields[part].annotation)


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def check_paths(spec: PipelineSpec, request: ExperimentRequest, rows: list[dict[str, Any]]) -> None:
    """Every path the base, each variant and each row sets is a field of the pipeline's job."""
    model, allowed = spec.request, job_paths(spec)
    for name in request.base:
        if name not in allowed | BASE_OPTIONS:
            raise PlanProblem(f"base.{name}", "not a field of the job (the experiment's own options go beside base)")
        _check_path(model, name, f"base.{name}")
    sources = [(f"variants[{n}].set", variant.set) for n, variant in enumerate(request.variants)]
    sources += [(f"dataset.rows[{n}]", {k: v for k, v in row.items() if k != ROW_LABEL}) for n, row in enumerate(rows)]
    for where, paths in sources:
        for path in paths:
            if path.split(".")[0] not in allowed:
                raise PlanProblem(f"{where}.{path}", "not a field of the job")
            _check_path(model, path, f"{where}.{path}")


def merged(base: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    job = {name: value for name, value in base.items()}
    for layer in layers:
        for path, value in layer.items():
            if path != ROW_LABEL:
                set_path(job, path, value)
    return job


def _overlap(path: str, field: str) -> str | None:
    """The longer of the two when one is the other or lies inside it, else None."""
    if field == path or field.startswith(path + "."):
        return field
    return path if path.startswith(field + ".") or not field else None


def blame(field: str, kind: str, row: int, row_values: dict[str, Any], variant: int, variant_set: dict) -> str:
    """Where a cell's problem at `field` came from: its variant, its row, or the base (a required field no one
    gave: the row's)."""
    for path in variant_set:
        if (deeper := _overlap(path, field)) is not None:
            return f"variants[{variant}].set.{deeper}"
    for path in row_values:
        if path != ROW_LABEL and (deeper := _overlap(path, field)) is not None:
            return f"dataset.rows[{row}].{deeper}"
    if kind == "missing":
        return f"dataset.rows[{row}].{field}"
    return f"base.{field}" if field else "base"


def validate_cells(spec: PipelineSpec, request: ExperimentRequest, rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Every cell (row × variant) as the pipeline's request, by row then variant; the first bad one a problem."""
    if (cells := len(rows) * len(request.variants) * request.repeat) > MAX_CELLS:
        raise PlanProblem("variants", f"{cells} cells (rows × variants × repeat); at most {MAX_CELLS}")
    check_paths(spec, request, rows)
    grid = []
    for n, row in enumerate(rows):
        line = []
        for v, variant in enumerate(request.variants):
            try:
                line.append(spec.request.model_validate(merged(request.base, row, variant.set)))
            except ValidationError as exc:
                error = exc.errors()[0]
                first = field_problems([error], spec.request)[0]
                where = blame(first["field"], error["type"], n, row, v, variant.set)
                raise PlanProblem(where, first["message"]) from None
        grid.append(line)
    return grid


def check_models(catalog: Catalog, request: ExperimentRequest, rows: list[dict[str, Any]], grid: list[list]) -> None:
    """Each cell's models are the catalog's, each of its kind (`Catalog.problem`)."""
    seen: set[str] = set()
    for n, line in enumerate(grid):
        for v, cell in enumerate(line):
            choice: ModelChoice | None = getattr(cell, "models", None)
            if choice is None or (key := choice.model_dump_json()) in seen:
                continue
            seen.add(key)
            if problem := catalog.problem(choice):
                raise PlanProblem(blame(problem[0], "", n, rows[n], v, request.variants[v].set), problem[1])


def cell_budget(request: ExperimentRequest, settings: Settings) -> float | None:
    """Each cell's dollar budget (the module's docstring)."""
    if (own := request.base.get("max_cost_usd")) is not None:
        return float(own)
    if settings.max_cost_usd is not None:
        return settings.max_cost_usd
    return request.max_cost_usd / request.max_parallel if request.max_cost_usd is not None else None


def cost_path(spec: PipelineSpec) -> str:
    """Where a job keeps its dollar budget: the first field, or field of a field, typed `CostLimit`."""
    for name, field in spec.request.model_fields.items():
        if CostLimit in getattr(field.annotation, "__args__", ()) or field.annotation is CostLimit:
            return name
        inner = _model_in(field.annotation)
        for deeper, sub in getattr(inner, "model_fields", {}).items():
            if CostLimit in getattr(sub.annotation, "__args__", ()):
                return f"{name}.{deeper}"
    return "cost"


def _at(job: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        job = job.get(part) if isinstance(job, dict) else None  # type: ignore[assignment]
    return job


async def plan(
    request: ExperimentRequest,
    rows: list[dict[str, Any]],
    settings: Settings,
    catalog: Catalog,
    price: Pricing,
    priority_key: int,
    fairness_key: str = "",
) -> ExperimentPlan:
    """The experiment's plan, every cell checked; a `PlanProblem` names the first bad field."""
    spec = PIPELINES[request.pipeline]
    grid = validate_cells(spec, request, rows)
    check_models(catalog, request, rows, grid)
    budget, where = cell_budget(request, settings), cost_path(spec)
    variants, fixed = [], {}
    for v, variant in enumerate(request.variants):
        sample = grid[0][v].model_copy(update={"max_cost_usd": budget})
        job = await price(sample)
        cost = _at(job, where)
        if v == 0:  # what the server sets on every job beside the budget (a meme's blocked words)
            asked = sample.model_dump(mode="json")
            fixed = {name: value for name, value in job.items() if name in asked and value != asked[name]}
            fixed.pop(where.split(".")[0], None)
        variants.append(_planned(v, variant, cost, fixed))
    planned = ExperimentPlan(
        pipeline=spec.name,
        workflow_type=spec.workflow_type,
        text_field=spec.text_field,
        cost_path=where,
        priority_key=priority_key,
        fairness_key=fairness_key,
        base={name: value for name, value in request.base.items() if name not in BASE_OPTIONS},
        fixed=fixed,
        rows=rows,
        variants=variants,
        baseline=request.baseline_index(),
        repeat=request.repeat,
        max_parallel=request.max_parallel,
        max_cost_usd=request.max_cost_usd,
    )
    check_carried_size(planned)
    return planned


# Temporal refuses a payload over 2 MB: the plan (its rows) and every cell's outcome travel together as the
# experiment's input when it continues as new, and as its result.
CARRIED_LIMIT = 1_600_000  # bytes: room under 2 MB for the report and the envelope
OUTCOME_BYTES = 360  # a cell's outcome as it is carried (ids, the picture's key, figures)


def check_carried_size(plan: ExperimentPlan) -> None:
    """A `PlanProblem` naming the dataset when the plan and its cells' outcomes could not be carried."""
    size = len(plan.model_dump_json()) + plan.cells * OUTCOME_BYTES
    if size > CARRIED_LIMIT:
        fits = max(1, int(len(plan.rows) * CARRIED_LIMIT / size))
        raise PlanProblem(
            "dataset",
            f"{len(plan.rows)} rows × {len(plan.variants)} variants × {plan.repeat} carry about {size // 1000} kB "
            f"through the experiment's history (at most {CARRIED_LIMIT // 1000} kB): split it into experiments of "
            f"about {fits} rows",
        )


def _planned(number: int, variant: Variant, cost: Any, fixed: dict[str, Any]) -> PlannedVariant:
    for path in variant.set:
        if path.split(".")[0] in fixed:
            raise PlanProblem(f"variants[{number}].set.{path}", "set by the server: give it in base")
    return PlannedVariant(name=variant.name, set=variant.set, cost=CostLimit.model_validate(cost) if cost else None)
