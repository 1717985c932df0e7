"""One wording for bad input, whichever way a job enters: `field_problems` (the HTTP API's 422 details) and
`validated` (the CLI's one line, the flag in place of the field)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from models.image import RECORDED_RUN, ImageJob
from models.meme import MemeJob
from models.settings import Settings
from models.validation import field_problems
from models.world import WorldJob
from starter.common import UsageError, validated
from starter.max_cost import BadBudget, cost_limit_for
from starter.world_cmd import WORLD_FLAGS


def problems(model: type[BaseModel], **fields) -> list[dict]:
    with pytest.raises(ValidationError) as exc:
        model(**fields)
    return field_problems(exc.value, model)


def test_bounds_are_worded_from_the_fields_own_bounds():
    assert problems(ImageJob, prompt="a cat", max_iterations=0) == [
        {"field": "max_iterations", "message": "must be between 1 and 20"}
    ]
    assert problems(MemeJob, topic="a cat", target_score=1.5) == [
        {"field": "target_score", "message": "must be between 0 and 1"}
    ]
    with pytest.raises(ValidationError) as exc:
        ImageJob(prompt="a cat", threshold=101)
    assert field_problems(exc.value) == [{"field": "threshold", "message": "must be 100 or less"}]  # no model


def test_a_nested_field_is_named_by_its_dotted_path():
    assert problems(WorldJob, prompt="a town", budget={"llm_calls": -1}) == [
        {"field": "budget.llm_calls", "message": "must be 0 or more"}
    ]
    assert problems(ImageJob, prompt="a cat", references=["/etc/passwd"])[0]["field"] == "references.0"
    assert [p["field"] for p in problems(ImageJob, prompt="a cat", options={"size": "12x12"})] == ["options.size"]


def test_validator_messages_lose_pydantics_prefix():
    assert problems(ImageJob, prompt="  ") == [{"field": "prompt", "message": "must not be empty"}]
    assert problems(ImageJob, prompt="a cat", options={"background": "transparent", "format": "jpeg"}) == [
        {"field": "options", "message": "transparent background needs format png or webp"}
    ]

    class Window(BaseModel):
        low: int
        high: int

        @model_validator(mode="after")
        def _ordered(self) -> Window:
            if self.low > self.high:
                raise ValueError("low must not be above high")
            return self

    assert problems(Window, low=2, high=1) == [{"field": "", "message": "low must not be above high"}]


def test_a_recorded_run_keeps_the_options_it_ran_with():
    raw = {"prompt": "a cat", "options": {"background": "transparent", "format": "jpeg"}}
    assert ImageJob.model_validate(raw, context={RECORDED_RUN: True}).options.format == "jpeg"


def test_the_cli_names_the_flag():
    with pytest.raises(UsageError, match=r"^--max-llm-calls: must be 0 or more$"):
        validated(WorldJob, WORLD_FLAGS, prompt="a town", budget={"llm_calls": -1})
    with pytest.raises(UsageError, match=r"^--posts: must be between 0 and 100$"):
        validated(WorldJob, WORLD_FLAGS, prompt="a town", posts_per_character=101)
    with pytest.raises(UsageError, match=r"^threshold: must be between 0 and 100$"):
        validated(ImageJob, prompt="a cat", threshold=-1)  # no flag for it: the field


def test_a_budget_is_refused_in_plain_words():
    settings = Settings()
    assert cost_limit_for(None, settings, []) is None
    with pytest.raises(BadBudget, match=r"^must be a number of US dollars, 0 or more \(got -1\)$"):
        cost_limit_for(-1, settings, [])
    assert cost_limit_for(2.5, settings, []).max_usd == 2.5
