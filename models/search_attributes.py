"""Atelier's custom search attributes: what makes runs searchable in the Temporal UI and `starter runs`.

Registered where Atelier starts Temporal (`starter server`/`up`, the tests' servers, compose's
namespace job). A run started on a server without them still runs, without them.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

PIPELINE = SearchAttributeKey.for_keyword("AtelierPipeline")  # image, world, character, meme, conversation, knowledge
PROVIDER = SearchAttributeKey.for_keyword("AtelierProvider")
STATE = SearchAttributeKey.for_keyword("AtelierState")  # the pipeline's own state, e.g. COMPLETED_WITH_ERRORS
COST = SearchAttributeKey.for_float("AtelierCostUSD")
SCORE = SearchAttributeKey.for_float("AtelierScore")
ROOT = SearchAttributeKey.for_keyword("AtelierRoot")  # the top-level run: a world's characters carry its id
TENANT = SearchAttributeKey.for_keyword("AtelierTenant")  # who started it through the HTTP API

KEYS = (PIPELINE, PROVIDER, STATE, COST, SCORE, ROOT, TENANT)
PIPELINES = ("image", "world", "character", "meme", "conversation", "knowledge", "life")
STATES = (
    "RUNNING",
    "COMPLETED",
    "COMPLETED_WITH_ERRORS",
    "FAILED",
    "CANCELLED",
    "BUDGET_EXHAUSTED",
    "ACTIVE",
    "CLOSED",
)
KINDS = {"KEYWORD": "Keyword", "DOUBLE": "Double"}  # the CLI's names for the indexed value types


def server_flags() -> list[str]:
    """`temporal server start-dev` flags that register the attributes."""
    return [flag for key in KEYS for flag in ("--search-attribute", f"{key.name}={KINDS[key.indexed_value_type.name]}")]


def at_start(pipeline: str, provider: str, root: str, tenant: str | None = None) -> TypedSearchAttributes:
    """The attributes a run starts with; its workflow updates state, cost and score as it goes."""
    pairs = [
        SearchAttributePair(PIPELINE, pipeline),
        SearchAttributePair(PROVIDER, provider),
        SearchAttributePair(STATE, "RUNNING"),
        SearchAttributePair(ROOT, root),
    ]
    return TypedSearchAttributes(pairs + ([SearchAttributePair(TENANT, tenant)] if tenant else []))
