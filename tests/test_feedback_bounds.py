"""Human feedback is bounded per run: the API refuses a note that would not fit (409), the run itself keeps
only the newest notes within the cap however many signals arrive, and the refinement reserves for them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.image import ImageJob, LoopState, RefinePromptRequest
from models.settings import WORKFLOW_QUEUE, Settings
from models.usage import CostLimit
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually, running_workers
from workflows.feedback import MAX_CHARS, MAX_NOTE_CHARS, MAX_NOTES, fits, prompt_tokens, reservation_usd, with_note
from workflows.image_refinement import ImageRefinementWorkflow


def test_the_newest_notes_within_the_cap_are_kept():
    pending: list[str] = []
    for n in range(12):
        pending = with_note(pending, f"note {n}")
    assert pending == [f"note {n}" for n in range(2, 12)], f"the newest {MAX_NOTES}"
    pending = []
    for n in range(5):
        pending = with_note(pending, f"{n}" * 1500)
    assert pending == ["3" * 1500, "4" * 1500] and sum(map(len, pending)) <= MAX_CHARS
    assert with_note(["kept"], "x" * (MAX_NOTE_CHARS + 1)) == ["kept"], "an overlong signal is dropped"
    assert fits(["a" * 2000], "b" * 2000) and not fits(["a" * 2000, "b" * 2000], "c")


def test_the_notes_are_priced_at_least_at_the_dearest_input_price():
    limit = CostLimit(max_usd=10, text_call_usd=0.0608, image_call_usd=0.2)  # gpt-4o: $2.50 in, $10 out
    notes = ["é" * 2000, "more blue"]
    assert prompt_tokens(notes) >= 4000 + len("more blue")  # bytes, not characters
    assert reservation_usd(limit, notes) >= prompt_tokens(notes) * 2.5 / 1e6
    assert reservation_usd(None, notes) == 0.0 and reservation_usd(limit, []) == 0.0


class GatedProvider(OfflineProvider):
    """The offline provider whose pictures wait for `gate` (so feedback can arrive mid-run), recording what
    each refinement was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.generating = asyncio.Event()
        self.refinements: list[RefinePromptRequest] = []

    def reset(self) -> None:
        self.gate, self.generating, self.refinements = asyncio.Event(), asyncio.Event(), []

    async def generate_image(self, *args: Any, **kwargs: Any) -> Any:
        self.generating.set()
        await self.gate.wait()
        return await super().generate_image(*args, **kwargs)

    async def refine_prompt(self, request: RefinePromptRequest, notes: Any = None) -> Any:
        self.refinements.append(request)
        return await super().refine_prompt(request, notes)


@pytest.fixture(scope="module")
async def served(module_dev_env, tmp_path_factory) -> AsyncIterator[tuple[str, Settings, GatedProvider]]:
    """The API and workers for every queue (the gated offline provider) on one dev server."""
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("feedback"))
    provider = GatedProvider()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            running_workers(module_dev_env.client, provider, LocalStore(settings.artifact_dir))
        )
        base, settings = await stack.enter_async_context(serving(settings, module_dev_env.client))
        yield base, settings, provider


@pytest.fixture
def provider(served) -> GatedProvider:
    served[2].reset()
    return served[2]


JOB = {"prompt": "a red fox", "max_iterations": 2, "threshold": 100, "technical_weight": 0}


@pytest.mark.slow  # a dev server, workers and uvicorn
async def test_the_api_refuses_feedback_beyond_the_cap(served, provider):
    base = served[0]
    async with http(base) as client:
        run = (await client.post("/v1/images", json=JOB)).json()
        await eventually(provider.generating.is_set, 30, "the first picture started")
        notes = [n * MAX_NOTE_CHARS for n in "ab"]
        for note in notes:
            assert (await client.post(f"/v1/runs/{run['id']}/feedback", json={"text": note})).status_code == 202
        for more in ("c" * MAX_NOTE_CHARS, "bluer"):
            refused = await client.post(f"/v1/runs/{run['id']}/feedback", json={"text": more})
            assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["title"] == "feedback full", refused.json()
        progress = (await client.get(f"/v1/runs/{run['id']}")).json()["progress"]
        assert progress["pending_feedback"] == notes
        provider.gate.set()
        await eventually(lambda: provider.refinements, 60, "the refinement")
    assert provider.refinements[0].human_feedback == notes


@pytest.mark.slow  # a dev server, workers and uvicorn
async def test_five_hundred_signals_reach_the_refinement_as_the_newest_within_the_cap(served, provider, module_dev_env):
    limit = CostLimit(max_usd=50, text_call_usd=0.0608, image_call_usd=0.2)
    job = ImageJob.model_validate(JOB | {"cost": limit})
    handle = await module_dev_env.client.start_workflow(
        ImageRefinementWorkflow.run, job, id=f"feedback-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
    )
    await eventually(provider.generating.is_set, 30, "the first picture started")
    notes = [f"{n:03d}" + "x" * 1997 for n in range(500)]  # 2 KB each, 1 MB in all
    for note in notes:  # one by one: their order is what "newest" means
        await handle.signal(ImageRefinementWorkflow.feedback, note)
    state = await handle.query(ImageRefinementWorkflow.state, result_type=LoopState)
    assert state.pending_feedback == notes[-2:]
    provider.gate.set()
    result = await handle.result()
    [refinement] = provider.refinements
    assert refinement.human_feedback == notes[-2:] and result.iterations[1].human_feedback == notes[-2:]
    assert sum(map(len, refinement.human_feedback)) <= MAX_CHARS and len(refinement.human_feedback) <= MAX_NOTES
    assert refinement.max_cost_usd == pytest.approx(limit.text_call_usd + reservation_usd(limit, notes[-2:]))
    assert refinement.max_cost_usd > limit.text_call_usd, "the notes are reserved for beyond the quote"
