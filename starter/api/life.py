"""A world's life through the API (`routes/life.py`, the create in `routes/creates.py`): start it, pause, resume or
stop it, inject an event into every feed of its next tick, and talk to one of its characters (a conversation in
its voice, searching its memory). A life's id is its world's (`models.life.life_id`); another tenant's world, or
none, is a 404 as for any run."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus

from kit.storage import world_key
from kit.world_layout import read, stored_world
from models.api import LifeRequest, RunCreated
from models.conversation import ConversationConfig, Speaker
from models.life import LifeJob, life_id
from models.pipelines import PIPELINES
from models.workflow_interfaces import LifeWorkflow, WorldWorkflow
from models.world import CharacterDetail
from starter.api import conversations, creates
from starter.api.conversations import ConversationCreated
from starter.api.errors import Conflict, Invalid, NotFound
from starter.api.service import Caller, Service, owned

LIFE = PIPELINES["life"]
SIGNALS = {"pause": LifeWorkflow.pause, "resume": LifeWorkflow.resume, "stop": LifeWorkflow.stop}


async def start(svc: Service, caller: Caller, world_id: str, body: LifeRequest, key: str | None) -> RunCreated:
    """The world's life, started (202 with its run id); the same world again answers the life that runs."""
    await owned(svc, caller, world_id, {WorldWorkflow.__name__}, "world")
    if body.vary:
        raise Invalid("body.vary", "a life is not a matrix: start one life per world")
    await creates.check(svc, caller, body)
    cost = creates.budget(svc, body, body.models, [])
    job = creates._job(
        LifeJob, body, world_id=world_id, budget=body.budget.model_copy(update={"cost": cost}).model_dump()
    )
    request = body.model_copy(update={"world_id": world_id})
    return await creates.start(svc, caller, LIFE, job, request, key, workflow_id=life_id(world_id))


async def running_life(svc: Service, caller: Caller, world_id: str) -> Any:
    """The handle of the world's life while it runs: 404 without one, 409 once it ended."""
    await owned(svc, caller, world_id, {WorldWorkflow.__name__}, "world")
    lived = life_id(world_id)
    described = await owned(svc, caller, lived, {LIFE.workflow_type}, "life")
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise Conflict("life ended", f"the life {lived!r} of world {world_id!r} is no longer running")
    return svc.client.get_workflow_handle(lived)


async def signal(svc: Service, caller: Caller, world_id: str, name: str) -> dict[str, str]:
    """Pause, resume or stop the world's life (each idempotent: asking twice is asking once)."""
    handle = await running_life(svc, caller, world_id)
    await handle.signal(SIGNALS[name])
    return {"id": handle.id, "status": "accepted", "signal": name}


async def inject(svc: Service, caller: Caller, world_id: str, text: str) -> dict[str, str]:
    """An event from outside: it enters every feed of the life's next tick."""
    handle = await running_life(svc, caller, world_id)
    await handle.signal(LifeWorkflow.inject_event, text.strip())
    return {"id": handle.id, "status": "accepted"}


async def speaker(svc: Service, caller: Caller, world_id: str, username: str) -> Speaker:
    """The caller's world's character, as a conversation speaks as it: 404 for an unknown world or character, or
    another tenant's."""
    await owned(svc, caller, world_id, {WorldWorkflow.__name__}, "world")
    stored = stored_world(world_id, await svc.store.keys(world_key(world_id) + "/")).characters.get(username)
    if stored is None or stored.profile is None:
        raise NotFound("character", f"{world_id}/{username}")
    profile = await read(svc.store, stored.profile, CharacterDetail)
    return Speaker(
        world_id=world_id,
        username=username,
        display_name=profile.display_name,
        bio=profile.bio,
        speaking_style=profile.speaking_style,
    )


async def talk(
    svc: Service, caller: Caller, world_id: str, username: str, config: ConversationConfig
) -> ConversationCreated:
    """A conversation with a world's character: in its voice, grounded in its profile, posts (the world's and its
    life's) and memory; talk to it at `/v1/conversations/{id}/messages`."""
    return await conversations.start(svc, caller, config, await speaker(svc, caller, world_id, username))
