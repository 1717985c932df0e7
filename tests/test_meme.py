"""The meme pipeline on real Temporal servers: refinement exits, cache, breakers, degradation, overlay, CLI."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image, ImageChops
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.breaker import Breakers, BreakerState
from activities.meme_render import fit, font, pixels, render
from activities.providers.call_log import read_log
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.providers.openai_provider import OpenAIProvider
from kit.storage import LocalStore, load
from models.image import Evaluation
from models.meme import FORMATS, MemeFormat, MemeJob, MemePhase, MemeResult
from models.settings import WORKFLOW_QUEUE, Settings
from tests.conftest import address_of, atelier_env, run_cli, running_workers, start_worker
from tests.fake_openai import Fault, png
from workflows.meme import MemeWorkflow

TOPIC = "working from home"


async def make(env, provider, store, job: MemeJob) -> MemeResult:
    async with running_workers(env.client, provider, store):
        return await env.client.execute_workflow(
            MemeWorkflow.run, job, id=f"meme-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )


def offline(tmp_path) -> GuardedProvider:
    return GuardedProvider(OfflineProvider(), tmp_path / "calls.jsonl")


async def test_refinement_stops_at_the_target(time_env, tmp_path):
    result = await make(time_env, offline(tmp_path), LocalStore(tmp_path), MemeJob(topic=TOPIC, target_score=0.0))
    assert result.stopped_because == "target_reached" and result.refinements == 0
    assert len(result.history) == 1 and result.score == result.history[0].score
    assert result.metrics.scores == [result.score] and not result.metrics.cache_hit


async def test_refinement_runs_out_and_keeps_the_best_draft(time_env, tmp_path):
    job = MemeJob(topic=TOPIC, format="drake", target_score=1.0, max_refinements=2)
    result = await make(time_env, offline(tmp_path), LocalStore(tmp_path), job)
    assert result.stopped_because == "out_of_refinements" and result.refinements == 2
    scores = [d.score for d in result.history]
    assert len(scores) == 3 and all(s is not None for s in scores)
    assert scores[-1] > scores[0], "the rewrites follow the judge's feedback"
    assert result.score == max(scores) and result.panels == result.history[scores.index(max(scores))].panels
    assert all(d.relevance is not None for d in result.history), "the scoring queue measured topic relevance"
    assert result.history[1].panels != result.history[0].panels
    assert set(result.metrics.phase_ms) >= {"GENERATING_TEXT", "SCORING", "REFINING", "GENERATING_IMAGE", "UPLOADING"}
    assert result.url is None, "the link is minted when the result is read"
    with Image.open(await LocalStore(tmp_path).url(result.image.key)) as image:
        assert image.size == FORMATS[MemeFormat.DRAKE].canvas
    assert result.usage.images == 2 and result.usage.models["offline"].calls == 3 + 3 + 2  # write, judge ×3; two scenes


async def test_identical_request_is_a_cache_hit_and_no_cache_bypasses(time_env, tmp_path):
    provider, store = offline(tmp_path), LocalStore(tmp_path)
    job = MemeJob(topic=TOPIC, format="drake", style="relatable")
    first = await make(time_env, provider, store, job)
    calls = len(read_log(tmp_path / "calls.jsonl"))
    second = await make(time_env, provider, store, job.model_copy(update={"topic": "  Working from  home "}))
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.image == first.image and second.panels == first.panels and second.stopped_because == "cached"
    assert len(read_log(tmp_path / "calls.jsonl")) == calls, "a cache hit makes no model call"
    assert second.metrics.cache_hit and second.usage.estimated_cost_usd == 0 and second.usage.images == 0
    other = await make(time_env, provider, store, job.model_copy(update={"style": "corporate"}))
    assert other.cache == "miss", "a different style is a different request"
    bypassed = await make(time_env, provider, store, job.model_copy(update={"use_cache": False}))
    assert bypassed.cache == "bypassed" and len(read_log(tmp_path / "calls.jsonl")) > calls


async def test_cache_entry_whose_image_is_gone_is_regenerated(time_env, tmp_path):
    provider, store = offline(tmp_path), LocalStore(tmp_path)
    job = MemeJob(topic=TOPIC, format="two-buttons")
    first = await make(time_env, provider, store, job)
    (tmp_path / first.image.key).unlink()
    again = await make(time_env, provider, store, job)
    assert again.cache == "miss" and again.image.sha256 == first.image.sha256
    assert await load(store, again.image)


async def test_blocked_words_never_reach_the_meme(time_env, tmp_path):
    job = MemeJob(topic=TOPIC, format="drake", blocked_words=["snacks", "pajamas"], target_score=1.0)
    result = await make(time_env, offline(tmp_path), LocalStore(tmp_path), job)
    used = {w.strip(".,!?").lower() for d in result.history for p in d.panels for w in p.split()}
    assert not {"snacks", "pajamas"} & used and result.refinements == 2


async def test_text_that_keeps_failing_verification_fails_the_run_clearly(time_env, fake_openai, tmp_path):
    """The test server always writes two panels; change-my-mind has one."""
    settings = Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test")
    provider = GuardedProvider(OpenAIProvider(settings), None)
    with pytest.raises(WorkflowFailureError) as failed:
        await make(time_env, provider, LocalStore(tmp_path), MemeJob(topic=TOPIC, format="change-my-mind"))
    message = str(failed.value.cause)
    assert "failed verification 3 times" in message and "change-my-mind needs 1 panels, got 2" in message
    rewrites = [c.body["messages"][1]["content"] for c in fake_openai.calls("chat")]
    assert len(rewrites) == 3 and "Fix these problems: change-my-mind needs 1 panels" in rewrites[-1]


async def test_breaker_opens_after_failures_and_closes_after_the_window(fake_openai):
    settings = Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test", LLM_TIMEOUT_S=1)
    now = [1000.0]  # the breakers' clock, moved by the test instead of sleeping
    breakers = Breakers(text="5/30", image="3/60", clock=lambda: now[0])
    provider = GuardedProvider(OpenAIProvider(settings), None, breakers=breakers)
    fake_openai.fail("chat", *(Fault(status=500) for _ in range(6)))
    for _ in range(5):
        with pytest.raises(ApplicationError) as failed:
            await provider.evaluate_image(png(1), "image/png", "a cat")
        assert failed.value.type == "ProviderHTTP500"
    assert breakers.text.state == BreakerState.OPEN and len(fake_openai.calls("chat")) == 5
    with pytest.raises(ApplicationError) as refused:
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert refused.value.type == "CircuitOpen" and not refused.value.non_retryable
    assert refused.value.next_retry_delay is not None and refused.value.next_retry_delay.total_seconds() == 30
    assert len(fake_openai.calls("chat")) == 5, "an open breaker does not call the provider"
    assert breakers.image.state == BreakerState.CLOSED, "each dependency has its own breaker"

    now[0] += 29.9
    assert breakers.text.state == BreakerState.OPEN, "still open until its window has passed"
    now[0] += 0.2
    assert breakers.text.state == BreakerState.HALF_OPEN
    with pytest.raises(ApplicationError):  # the trial call meets the sixth injected failure: open again
        await provider.evaluate_image(png(1), "image/png", "a cat")
    assert breakers.text.state == BreakerState.OPEN
    now[0] += 30.1
    fake_openai.script_scores(64)
    verdict = (await provider.evaluate_image(png(1), "image/png", "a cat")).value
    assert verdict == Evaluation(score=64, feedback=verdict.feedback) and breakers.text.state == BreakerState.CLOSED


async def test_image_outage_degrades_to_a_plain_background(time_env, fake_openai, tmp_path):
    settings = Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="sk-test", LLM_TIMEOUT_S=1)
    provider = GuardedProvider(OpenAIProvider(settings), None, breakers=Breakers())
    fake_openai.fail("responses", *(Fault(status=503) for _ in range(50)))
    job = MemeJob(topic=TOPIC, format="drake", image_deadline_s=20)
    result = await make(time_env, provider, LocalStore(tmp_path), job)
    assert result.degraded is not None and "plain background" in result.degraded
    assert "2 of 2 pictures" in result.degraded and result.usage.images == 0
    assert result.cache == "miss" and result.panels in [d.panels for d in result.history]
    assert len(fake_openai.calls("responses")) <= 2 * 3 + 2, "the image breaker stopped the hammering"
    with Image.open(await LocalStore(tmp_path).url(result.image.key)) as image:
        assert image.size == (1024, 1024)


@pytest.mark.parametrize("fmt", list(MemeFormat))
def test_overlay_keeps_long_text_inside_each_panel(fmt):
    """Text pixels (the difference from the same meme without text) lie only inside the panels' boxes."""
    spec = FORMATS[fmt]
    long = "Supercalifragilisticexpialidocious " + "word " * 100
    texts = [long[: panel.max_chars * 3] for panel in spec.panels]  # three times the limit
    plain = render(spec, [""] * len(spec.panels), [png(3, 256)] * len(spec.scenes), "seed")
    with_text = render(spec, texts, [png(3, 256)] * len(spec.scenes), "seed")
    a, b = Image.open(io.BytesIO(plain)).convert("RGB"), Image.open(io.BytesIO(with_text)).convert("RGB")
    assert a.size == b.size == spec.canvas
    diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 16 else 0)
    outside = diff.copy()
    for panel in spec.panels:
        box = pixels(panel.box, spec.canvas)
        assert diff.crop(box).getbbox() is not None, f"panel {panel.name} shows its text"
        outside.paste(0, box)
    assert outside.getbbox() is None, f"text outside the panels at {outside.getbbox()}"


def test_text_within_the_limit_fits_without_cutting():
    for spec in FORMATS.values():
        for panel in spec.panels:
            left, top, right, bottom = pixels(panel.box, spec.canvas)
            text = ("meme " * 40)[: panel.max_chars].strip()
            face, _, lines, line_height = fit(text.upper(), right - left, bottom - top, outlined=True)
            assert "…" not in "".join(lines) and len(lines) * line_height <= bottom - top
            assert face.size >= 20, f"{spec.format.value}/{panel.name}: readable at {face.size}px"
    assert font(40).size == 40


@pytest.mark.slow
async def test_cli_meme_then_cache_hit_and_bad_input(dev_env, tmp_path):
    env = atelier_env(tmp_path, address_of(dev_env))
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        first = run_cli("meme", TOPIC, "--format", "drake", env=env)
        assert first.returncode == 0, first.stderr
        made = json.loads(first.stdout)
        assert made["cache"] == "miss" and made["provider"] == "offline" and made["format"] == "drake"
        assert "generating image" in first.stderr and "uploading" in first.stderr and "cache: miss" in first.stderr
        with Image.open(made["file"]) as image:
            assert image.size == (1024, 1024)
        assert {"score", "history", "url", "metrics", "usage"} <= set(made)
        second = run_cli("meme", TOPIC, "--format", "drake", env=env)
        assert second.returncode == 0 and "cache: hit" in second.stderr
        assert json.loads(second.stdout)["image"] == made["image"]
        status = run_cli("status", made["meme_id"], env=env)
        state = json.loads(status.stdout)["state"]
        assert state["phase"] == MemePhase.COMPLETED and state["metrics"]["refinements"] == made["refinements"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    for args, message in [
        (["meme", "  "], "error: topic: must not be empty"),
        (["meme", "x", "--format", "loss"], "error: argument --format: invalid choice: 'loss'"),
        (["meme", "x", "--max-refinements", "-1"], "error: --max-refinements: must be between 0 and 10"),
        (["meme", "x", "--target-score", "1.5"], "error: --target-score: must be between 0 and 1"),
    ]:
        done = run_cli(*args, env=env)
        assert done.returncode == 2 and done.stderr.strip().startswith(message) and len(done.stderr.splitlines()) == 1
        assert done.stdout == ""
