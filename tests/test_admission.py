"""A tenant's caps hold across API processes: its admission workflow admits one run at a time against every
run it holds. Two APIs on loopback share one dev server and the registry's workers for the workflow and
events queues only, so an admitted run stays running (no worker makes its calls) until the test ends it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from activities.providers.guarded import GuardedProvider
from activities.providers.offline import OfflineProvider
from kit.api_keys import KeyStore
from kit.storage import LocalStore
from models.admission import Admission, AdmissionRequest, AdmissionState, admission_id
from models.meme import MemeJob
from models.settings import EVENTS_QUEUE, WORKFLOW_QUEUE, Settings
from starter.api.caps import IN_FLIGHT, WAITING, admission_start, admitted
from starter.api.service import Caller, RateLimiter, Service
from tests.api_support import api_settings, http, serving
from tests.conftest import address_of, eventually, running_workers
from workflows.admission import TenantAdmissionWorkflow
from workflows.meme import MemeWorkflow

pytestmark = pytest.mark.slow  # a dev server, workers and uvicorn

MEME = {"topic": "queues", "format": "drake"}


@pytest.fixture(scope="module")
async def workers(module_dev_env, tmp_path_factory) -> AsyncIterator[Settings]:
    """The workflow and events workers (no worker for the paid or storage calls): settings to serve with."""
    settings = api_settings(address_of(module_dev_env), tmp_path_factory.mktemp("admission"))
    queues = [WORKFLOW_QUEUE, EVENTS_QUEUE]
    provider = GuardedProvider(OfflineProvider(), None)
    async with running_workers(module_dev_env.client, provider, LocalStore(settings.artifact_dir), queues):
        yield settings


@contextlib.asynccontextmanager
async def two_apis(
    client: Client, settings: Settings, tenant: str, **caps: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API instances with these caps, each on a loopback port and a Temporal connection of its own, as
    two processes would be: a client of each, with a key for `tenant`."""
    settings = settings.model_copy(update=caps)
    key = KeyStore(settings.api_keys_path).add(tenant)[0]
    other = await Client.connect(settings.temporal_address, data_converter=client.data_converter)
    async with (
        serving(settings, client) as (one, _),
        serving(settings, other) as (two, _),
        http(one, key) as first,
        http(two, key) as second,
    ):
        yield first, second


async def held(client: Client, tenant: str) -> AdmissionState:
    return await client.get_workflow_handle(admission_id(tenant)).query(TenantAdmissionWorkflow.held)


async def admit(client: Client, state: AdmissionState, request: AdmissionRequest) -> Admission:
    return await client.execute_update_with_start_workflow(
        TenantAdmissionWorkflow.admit, request, start_workflow_operation=admission_start(state)
    )


async def test_twelve_racing_creates_over_two_apis_admit_one_run_and_its_end_frees_the_slot(module_dev_env, workers):
    client = module_dev_env.client
    async with two_apis(client, workers, "racer", tenant_max_running=1) as apis:
        answers = await asyncio.gather(*(apis[n % 2].post("/v1/memes", json=MEME) for n in range(12)))
        assert sorted(a.status_code for a in answers) == [202] + [429] * 11, [(a.status_code, a.text) for a in answers]
        for refused in (a for a in answers if a.status_code == 429):
            assert refused.json()["title"] == "too many runs at once" and "at once" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) >= 1
        run_id = next(a.json()["id"] for a in answers if a.status_code == 202)
        assert list((await held(client, "racer")).slots) == [run_id]

        run = client.get_workflow_handle(run_id)
        assert (await run.describe()).status == WorkflowExecutionStatus.RUNNING
        assert (await apis[1].post("/v1/memes", json=MEME)).status_code == 429, "the running run holds the slot"
        await run.terminate("the test ends it")
        turns = itertools.cycle(apis)

        async def created() -> httpx.Response | None:
            answer = await next(turns).post("/v1/memes", json=MEME)
            assert answer.status_code in (202, 429), answer.text
            return answer if answer.status_code == 202 else None

        after = await eventually(created, 30, "a create admitted once the run ended", every=0.5)
        assert list((await held(client, "racer")).slots) == [after.json()["id"]]
        await client.get_workflow_handle(after.json()["id"]).terminate("the test ends it")


async def test_the_daily_cap_counts_what_running_runs_reserved(module_dev_env, workers):
    client = module_dev_env.client
    async with two_apis(client, workers, "thrifty", tenant_max_usd_per_day=1.0) as (first, second):
        one = await first.post("/v1/memes", json={**MEME, "max_cost_usd": 0.6})
        assert one.status_code == 202, one.text
        refused = await second.post("/v1/memes", json={**MEME, "max_cost_usd": 0.6})
        assert refused.status_code == 402, refused.text
        assert refused.json()["title"] == "daily budget spent" and "spent today" in refused.json()["detail"]
        assert "$0.60 held by running runs" in refused.json()["detail"], refused.json()["detail"]
        run = client.get_workflow_handle(one.json()["id"])
        assert (await run.describe()).status == WorkflowExecutionStatus.RUNNING, "refused while the first runs"
        smaller = await second.post("/v1/memes", json={**MEME, "max_cost_usd": 0.3})
        assert smaller.status_code == 202, "what is left of the day still admits a run that fits"
        state = await held(client, "thrifty")
        assert sorted(slot.reserved_usd for slot in state.slots.values()) == [0.3, 0.6]
        for answer in (one, smaller):
            await client.get_workflow_handle(answer.json()["id"]).terminate("the test ends it")


async def test_an_idempotent_create_holds_one_slot(module_dev_env, workers):
    client = module_dev_env.client
    async with two_apis(client, workers, "retrier", tenant_max_running=1) as apis:
        key = {"Idempotency-Key": "meme-once"}
        answers = await asyncio.gather(*(apis[n % 2].post("/v1/memes", json=MEME, headers=key) for n in range(6)))
        assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        run_id = answers[0].json()["id"]
        assert list((await held(client, "retrier")).slots) == [run_id]

    state = AdmissionState(tenant="retrier", runs_query="unused")
    again = await admit(client, state, AdmissionRequest(run_id=run_id, max_running=1))
    assert again.admitted and again.running == 1, "the same run admitted again holds its one slot"
    other = await admit(client, state, AdmissionRequest(run_id="retrier.meme-other", max_running=1))
    assert not other.admitted and other.refused_for == "running"
    await client.get_workflow_handle(run_id).terminate("the test ends it")


async def test_a_run_the_server_refuses_to_start_frees_its_slot(module_dev_env, workers):
    client = module_dev_env.client
    settings = workers.model_copy(update={"tenant_max_running": 1})
    store, keys = LocalStore(settings.artifact_dir), KeyStore(settings.api_keys_path)
    svc = Service(settings, client, store, keys, RateLimiter(60), keyed=True)
    caller = Caller("unlucky", keyed=True)
    unknown = TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword("NoSuchAttribute"), "x")])
    with pytest.raises(RPCError):
        async with admitted(svc, caller, "unlucky.meme-refused", cost=None):
            assert list((await held(client, "unlucky")).slots) == ["unlucky.meme-refused"]
            await client.start_workflow(
                MemeWorkflow.run, MemeJob(topic="x"), id="unlucky.meme-refused", task_queue=WORKFLOW_QUEUE,
                search_attributes=unknown,
            )  # fmt: skip

    async def freed() -> bool:
        return not (await held(client, "unlucky")).slots

    await eventually(freed, 10, "the refused run's slot freed")
    async with admitted(svc, caller, "unlucky.meme-next", cost=None):
        pass  # no 429: the cap of one has room again


async def test_admissions_continue_as_new_carrying_their_slots(module_dev_env, workers):
    client = module_dev_env.client
    state = AdmissionState(tenant="busy", runs_query="unused", continue_after=3)
    await admit(client, state, AdmissionRequest(run_id="busy.meme-0", max_running=10))
    first_run = (await client.get_workflow_handle(admission_id("busy")).describe()).run_id
    for n in range(1, 5):  # the third message ends the first run: the rest land on the next
        answer = await admit(client, state, AdmissionRequest(run_id=f"busy.meme-{n}", max_running=10))
        assert answer.admitted and answer.running == n + 1, answer
    ended = await client.get_workflow_handle(admission_id("busy"), run_id=first_run).describe()
    assert ended.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert sorted((await held(client, "busy")).slots) == [f"busy.meme-{n}" for n in range(5)]


async def test_an_admission_decided_after_the_api_stopped_waiting_holds_no_slot(module_dev_env, workers):
    """The API answers 503 once its wait is over; an update the workflow reaches later must not hold a slot for
    a run nobody will start (with a cap of one, it would refuse the tenant's next create for a minute)."""
    client = module_dev_env.client
    state = AdmissionState(tenant="slow", runs_query="unused")
    gone = datetime.now(UTC) - timedelta(seconds=1)
    late = await admit(client, state, AdmissionRequest(run_id="slow.meme-0", max_running=1, admit_by=gone))
    assert not late.admitted and late.refused_for == "late" and late.running == 0, late
    soon = datetime.now(UTC) + timedelta(minutes=1)
    answer = await admit(client, state, AdmissionRequest(run_id="slow.meme-1", max_running=1, admit_by=soon))
    assert answer.admitted and sorted((await held(client, "slow")).slots) == ["slow.meme-1"], answer


async def test_without_caps_no_admission_workflow_starts(module_dev_env, workers):
    client = module_dev_env.client
    async with two_apis(client, workers, "free") as (first, _):
        answer = await first.post("/v1/memes", json=MEME)
        assert answer.status_code == 202, answer.text
        with pytest.raises(RPCError, match="not found"):
            await client.get_workflow_handle(admission_id("free")).describe()
        await client.get_workflow_handle(answer.json()["id"]).terminate("the test ends it")


async def test_a_flood_of_creates_while_admission_waits_is_refused_never_a_500(dev_env, tmp_path):
    """Temporal holds at most 10 updates in flight per workflow. With no events worker, a refusal's count of the
    tenant's runs never comes back and holds the admission lock: 60 creates of one tenant through two APIs
    queue in each process (a few in flight at a time, a bounded line waiting: 429 at once beyond it) and get
    429 or 503 with Retry-After, never a 500."""
    settings = api_settings(address_of(dev_env), tmp_path)
    provider = GuardedProvider(OfflineProvider(), None)
    store = LocalStore(settings.artifact_dir)
    async with (
        running_workers(dev_env.client, provider, store, [WORKFLOW_QUEUE]),
        two_apis(dev_env.client, settings, "flood", tenant_max_running=1, admission_wait_s=4) as apis,
    ):
        assert (await apis[0].post("/v1/memes", json=MEME)).status_code == 202
        clients = itertools.islice(itertools.cycle(apis), 60)
        answers = await asyncio.gather(*(client.post("/v1/memes", json=MEME) for client in clients))
    refused = [(a.status_code, a.headers.get("retry-after"), a.text[:160]) for a in answers]
    assert all(status in (429, 503) and after for status, after, _ in refused), refused
    assert sum(status == 429 for status, _, _ in refused) >= 60 - 2 * (IN_FLIGHT + WAITING), "a bounded line"
