"""Bad input, everywhere it can enter: one clear line and exit code 2 at the CLI (nothing started,
nothing written), a fast non-retryable failure for workflow inputs, and a bounded, final error for
model output that does not fit its schema."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid

import pytest
from PIL import Image
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

import kit.references as references
from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from activities.providers.openai_provider import OpenAIProvider
from kit.storage import LocalStore
from models.image import Evaluation, ImageJob
from models.settings import IMAGE_QUEUE, STORAGE_QUEUE, TEXT_QUEUE, WORKFLOW_QUEUE, Settings
from models.world import safe_username
from tests.conftest import address_of, atelier_env, cli_main, run_cli, running_workers
from tests.fake_openai import Fault, png
from workers.registry import build_workers

LONG = "x" * 100_000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    (folder / "notes.png").write_text("not an image")
    (folder / "truncated.png").write_bytes(png(1, size=256)[:120])
    huge = io.BytesIO()
    Image.new("1", (9000, 9000)).save(huge, "PNG")
    (folder / "huge.png").write_bytes(huge.getvalue())
    (folder / "adir.png").mkdir()
    return {name: str(folder / name) for name in ("notes.png", "truncated.png", "huge.png", "adir.png", "missing.png")}


CLI_CASES = [
    # image: prompts
    (["image", ""], "error: prompt: must not be empty"),
    (["image", "  \n\t "], "prompt: must not be empty"),
    (["image", LONG], "prompt: String should have at most 8000 characters"),
    (["image", "a cat\x01"], "prompt: contains a control character (U+0001)"),
    (["image", "a \x1b[31mred\x1b[0m cat"], "control character (U+001B)"),
    # image: numbers and choices
    (["image", "a cat", "--max-iterations", "0"], "--max-iterations: must be between 1 and 20"),
    (["image", "a cat", "--max-iterations", "21"], "--max-iterations: must be between 1 and 20"),
    (["image", "a cat", "--threshold", "-1"], "--threshold: must be between 0 and 100"),
    (["image", "a cat", "--threshold", "101"], "--threshold: must be between 0 and 100"),
    (["image", "a cat", "--threshold", "high"], "invalid int value"),
    (["image", "a cat", "--technical-weight", "1.5"], "--technical-weight: must be between 0 and 1"),
    (["image", "a cat", "--size", "999x999"], "invalid choice"),
    (["image", "a cat", "--format", "gif"], "invalid choice"),
    (["image", "a cat", "--quality", "ultra"], "invalid choice"),
    (["image", "a cat", "--background", "plaid"], "invalid choice"),
    (
        ["image", "a cat", "--format", "jpeg", "--background", "transparent"],
        "--background: transparent background needs format png or webp",
    ),
    # image: reference files
    (["image", "a cat", "--refs", "{missing.png}"], "no such file"),
    (["image", "a cat", "--refs", "{adir.png}"], "not a regular file"),
    (["image", "a cat", "--refs", "{notes.png}"], "not a readable image"),
    (["image", "a cat", "--refs", "{truncated.png}"], "not a readable image"),
    (["image", "a cat", "--refs", "{huge.png}"], "too large"),
    # image: reference URLs
    (["image", "a cat", "--refs", "file:///etc/passwd"], "only http and https"),
    (["image", "a cat", "--refs", "ftp://example.com/cat.png"], "only http and https"),
    (["image", "a cat", "--refs", "data:image/png;base64,iVBORw0KGgo="], "only http and https"),
    (["image", "a cat", "--refs", "http://127.0.0.1:9/cat.png"], "non-public address"),
    (["image", "a cat", "--refs", "http://10.1.2.3/cat.png"], "non-public address"),
    (["image", "a cat", "--refs", "http://192.168.0.10/cat.png"], "non-public address"),
    (["image", "a cat", "--refs", "http://169.254.169.254/latest/meta-data/"], "non-public address"),
    (["image", "a cat", "--refs", "http://[::1]/cat.png"], "non-public address"),
    # world
    (["world", ""], "error: prompt: must not be empty"),
    (["world", LONG], "prompt: String should have at most 4000 characters"),
    (["world", "a town\x07"], "control character (U+0007)"),
    (["world", "a town", "--characters", "0"], "--characters: must be between 1 and 200"),
    (["world", "a town", "--characters", "201"], "--characters: must be between 1 and 200"),
    (["world", "a town", "--characters", "lots"], "invalid int value"),
    (["world", "a town", "--posts", "-1"], "--posts: must be between 0 and 100"),
    (["world", "a town", "--posts", "101"], "--posts: must be between 0 and 100"),
    (["world", "a town", "--parallel", "0"], "--parallel: must be between 1 and 50"),
    (["world", "a town", "--max-llm-calls", "-5"], "--max-llm-calls: must be 0 or more"),
    (["world", "a town", "--max-image-calls", "-1"], "--max-image-calls: must be 0 or more"),
    # other commands
    (["status", "no-such-run"], "no run with id 'no-such-run'"),
    (["result", "no-such-run"], "no run with id 'no-such-run'"),
    (["cancel", "no-such-run"], "no run with id 'no-such-run'"),
    (["frobnicate"], "invalid choice"),
    (["image"], "the following arguments are required: prompt"),
]


@pytest.mark.parametrize(("args", "message"), CLI_CASES, ids=[f"{i:02d}" for i in range(len(CLI_CASES))])
async def test_cli_refuses_bad_input(module_dev_env, files, tmp_path, args, message):
    out = tmp_path / "out"
    for name, path in files.items():
        args = [a.replace("{" + name + "}", path) for a in args]
    if args and args[0] in {"image", "world"} and len(args) > 1:
        args += ["--out", str(out)]
    done = cli_main(*args, env=atelier_env(tmp_path, address_of(module_dev_env)))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr[:500]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not out.exists() and not (tmp_path / "data" / "out").exists(), "nothing is written"
    assert [w.id async for w in module_dev_env.client.list_workflows()] == [], "no workflow is started"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ATELIER_PROVIDER", "bogus"),
        ("LLM_TIMEOUT_S", "-1"),
        ("ATELIER_STORAGE", "ftp"),
        ("ATELIER_BREAKER_IMAGE", "0/60"),
        ("ATELIER_PRICES", "{not json"),
        ("ATELIER_PRICES", '{"gpt-4o": {"per_image": -1}}'),
        ("ATELIER_BLOCKED_WORDS", "darn, heck"),
    ],
)
def test_bad_configuration_is_a_one_line_error(tmp_path, variable, value):
    done = cli_main("status", "x", env=atelier_env(tmp_path, "127.0.0.1:1", **{variable: value}))
    assert done.returncode == 2 and done.stderr.startswith("error: invalid configuration:")
    assert len(done.stderr.strip().splitlines()) == 1 and variable in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["image", "a cat", "--threshold", "high"], {}, "invalid int value"),
        (["world", "a town\x07"], {}, "control character (U+0007)"),
        (["status", "x"], {"ATELIER_PRICES": "{not json"}, "ATELIER_PRICES"),
    ],
)
def test_the_installed_cli_refuses_bad_input_the_same_way(tmp_path, args, extra, message):
    """The matrices above call `main()` in-process; these run `python -m starter` itself (the entry
    point, its exit code and streams)."""
    done = run_cli(*args, env=atelier_env(tmp_path, "127.0.0.1:1", **extra))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and message in done.stderr


@pytest.mark.parametrize(
    ("workflow", "payload"),
    [
        ("WorldWorkflow", {"prompt": "a town", "characters": 0}),
        ("WorldWorkflow", {"prompt": "   "}),
        ("ImageRefinementWorkflow", {"prompt": "a cat\x00"}),
        ("ImageRefinementWorkflow", {"prompt": "a cat", "threshold": 500}),
        ("ImageRefinementWorkflow", {"prompt": "a cat", "options": {"size": "12x12"}}),
    ],
)
async def test_workflow_input_fails_fast_instead_of_retrying(time_env, tmp_path, workflow, payload):
    async with running_workers(time_env.client, OfflineProvider(), LocalStore(tmp_path)):
        handle = await time_env.client.start_workflow(
            workflow, payload, id=f"bad-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, ApplicationError) and failure.value.cause.type == "InvalidInput"
    assert failure.value.cause.message.startswith("invalid "), "one line naming the bad field"
    assert not any(tmp_path.iterdir()), "nothing was written"


@activity.defn(name="evaluate_image")
async def buggy_evaluation(request: dict) -> dict:
    """A deploy with a bug: its result does not fit the workflow's model."""
    return {"value": {"score": 500, "feedback": "off the scale", "provider": "bug"}, "usage": {}}


async def test_a_pydantic_error_from_a_bug_fails_the_task_not_the_run(dev_env, tmp_path):
    client = dev_env.client
    queues = [WORKFLOW_QUEUE, IMAGE_QUEUE, STORAGE_QUEUE]
    async with contextlib.AsyncExitStack() as stack:
        for worker in [
            *build_workers(client, queues, GuardedProvider(OfflineProvider(), None), LocalStore(tmp_path)),
            Worker(client, task_queue=TEXT_QUEUE, activities=[buggy_evaluation]),
        ]:
            await stack.enter_async_context(worker)
        job = ImageJob(prompt="a cat", max_iterations=1, technical_weight=0)
        handle = await client.start_workflow(
            "ImageRefinementWorkflow", job, id=f"bug-{uuid.uuid4()}", task_queue=WORKFLOW_QUEUE
        )
        failed_task = None
        for _ in range(200):
            events = (await handle.fetch_history()).events
            failed_task = next((e for e in events if e.HasField("workflow_task_failed_event_attributes")), None)
            if failed_task:
                break
            await asyncio.sleep(0.1)
        assert failed_task is not None, "the workflow task failed"
        message = failed_task.workflow_task_failed_event_attributes.failure
        assert "score" in str(message), message
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING, "the run waits for a fixed deploy"
        await handle.terminate("test over")


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"score": "high", "feedback": 3}),  # wrong types
        json.dumps({"score": 50, "feedback": "fine", "is_admin": True}),  # extra fields
        json.dumps({"score": 50, "feedback": "x" * 100_000}),  # enormous string
        json.dumps({"score": 900, "feedback": "out of range"}),
        "Sure! Here is the JSON you asked for.",
    ],
    ids=["wrong-types", "extra-fields", "enormous", "out-of-range", "prose"],
)
async def test_model_output_that_breaks_its_schema_is_refused(fake_openai, content):
    provider = OpenAIProvider(Settings(LLM_BASE_URL=fake_openai.url, LLM_API_KEY="k"))
    fake_openai.fail("chat", *(Fault(content=content) for _ in range(3)))  # the reply, and both re-asks
    with pytest.raises(ApplicationError) as err:
        await provider.structured(Evaluation, "evaluate", "a cat")
    assert err.value.type == "InvalidModelOutput" and "\n" not in err.value.message
    assert err.value.non_retryable  # outside an activity: no attempts left to spend


@pytest.mark.parametrize(
    ("raw", "safe"), [("../../etc/passwd", "etc_passwd"), ("Ana/../Smith", "ana_smith"), ("", "character")]
)
def test_model_usernames_cannot_escape_the_store(raw, safe):
    assert safe_username(raw, set()) == safe


async def test_redirect_to_a_private_address_is_refused(monkeypatch):
    """The first hop is a public name; its redirect to the cloud metadata address is checked again and
    refused by the real guard. DNS is answered here and the transport is in-process: nothing is sent."""
    import socket

    import httpx

    def dns(host, port, *args, **kwargs):
        address = "93.184.216.34" if host == "photos.example" else host  # IP literals resolve to themselves
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    with pytest.raises(references.BadReference, match=r"169\.254\.169\.254"):
        await references.fetch_url("http://photos.example/cat.png", transport=httpx.MockTransport(serve))
    assert requested == ["http://93.184.216.34/cat.png"], "the metadata address was never requested"
