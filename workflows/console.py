"""What a run shows in the Temporal UI as it goes: its search attributes and its current details.

A run is searchable when its starter gave it `AtelierPipeline` (the server has Atelier's attributes);
then its workflow keeps `AtelierState`, `AtelierCostUSD` and `AtelierScore` up to date, upserting only
what changed, and hands the attributes on to its children. Otherwise nothing is upserted, so a
server without the attributes runs everything as before.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from models.search_attributes import COST, PIPELINE, ROOT, SCORE, STATE


def searchable() -> bool:
    return workflow.info().typed_search_attributes.get(PIPELINE) is not None


def set_search_attributes(state: str | None = None, cost_usd: float | None = None, score: float | None = None) -> None:
    """Upsert the attributes that changed (one history event, none when nothing changed)."""
    if not searchable():
        return
    now = workflow.info().typed_search_attributes
    wanted = [
        (STATE, state),
        (COST, None if cost_usd is None else float(round(cost_usd, 6))),
        (SCORE, None if score is None else float(score)),
    ]
    changes = [key.value_set(value) for key, value in wanted if value is not None and now.get(key) != value]
    if changes:
        workflow.upsert_search_attributes(changes)


def for_child(pipeline: str) -> TypedSearchAttributes | None:
    """A child's starting attributes: its own pipeline, this run's provider and root, RUNNING."""
    if not searchable():
        return None
    inherited = workflow.info().typed_search_attributes
    pairs = [
        p for p in inherited.search_attributes if p.key.name not in {PIPELINE.name, STATE.name, COST.name, SCORE.name}
    ]
    if inherited.get(ROOT) is None:
        pairs.append(SearchAttributePair(ROOT, workflow.info().workflow_id))
    return TypedSearchAttributes(
        [*pairs, SearchAttributePair(PIPELINE, pipeline), SearchAttributePair(STATE, "RUNNING")]
    )


def show(*lines: str) -> None:
    """The run's current details (markdown) in the UI: a short status, replaced as the run goes."""
    workflow.set_current_details("\n".join(line for line in lines if line))
