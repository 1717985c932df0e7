"""A pipeline is declared once (`models.pipelines`): the API's `Pipeline` literal names the same pipelines, and
every list of them — routes, filters, caps, forms, templates, the CLI's commands and run types, the event
feed's progress, the workers' workflows, priorities — is read from the declaration. No server."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args, get_type_hints

from fastapi.routing import APIRoute

from activities.run_events import progress_of
from kit.pictures import LAYOUTS
from kit.storage import world_key
from kit.world_layout import PICTURE, character_key, post_key, stored_world
from models.api import Pipeline
from models.pipelines import PIPELINES, WORKFLOW_TYPES, spec_of
from models.priority import PRIORITY_KEYS
from models.search_attributes import PIPELINES as SEARCHABLE
from starter import cli, runs_cmd
from starter.api.caps import TOP_LEVEL
from starter.api.routes import creates
from starter.studio import run_views
from starter.studio.forms import fields_of
from workers.registry import WORKFLOWS

TEMPLATES = Path(run_views.__file__).parent / "templates"


def test_the_declaration_and_the_api_literal_name_the_same_pipelines():
    assert list(get_args(Pipeline)) == list(PIPELINES)
    assert all(name == spec.name for name, spec in PIPELINES.items())
    assert all(spec_of(spec.workflow_type) is spec for spec in PIPELINES.values())
    assert spec_of("ConversationWorkflow") is None and spec_of(None) is None


def test_each_declaration_holds_together():
    for spec in PIPELINES.values():
        assert spec.status_query.__qualname__ == f"{spec.workflow_type}.{spec.status_query.__name__}"
        answers = get_type_hints(spec.status_query)["return"]  # `LoopState | None`, `MemeStatus`, …
        assert spec.status_type in (answers, *get_args(answers)), spec.name
        assert get_type_hints(spec.workflow.run)["return"] is spec.result_type, spec.name
        assert spec.text_field in spec.request.model_fields, spec.name
        assert set(spec.progress) <= set(spec.status_type.model_fields), spec.name
        assert spec.pictures in LAYOUTS, spec.name


def test_the_api_reads_its_pipelines_from_the_declaration():
    posts = {route.path: route for route in creates.router.routes if isinstance(route, APIRoute)}
    for spec in PIPELINES.values():
        route = posts[f"/v1/{spec.path}"]
        assert get_type_hints(route.endpoint)["body"] is spec.request, spec.name
    assert TOP_LEVEL.startswith("WorkflowType IN (") and all(f'"{name}"' in TOP_LEVEL for name in WORKFLOW_TYPES)


def test_the_studio_reads_its_pipelines_from_the_declaration():
    for spec in PIPELINES.values():
        assert inspect.iscoroutinefunction(getattr(run_views, spec.view)), spec.view
        assert (TEMPLATES / spec.live).is_file() and (TEMPLATES / spec.page).is_file(), spec.name
        assert fields_of(spec.request, {}), spec.name


def test_the_cli_workers_and_priorities_read_the_declaration():
    for spec in PIPELINES.values():
        command = cli.STARTS[spec.name]
        assert command.__name__ == spec.command
        assert cli.COMMANDS[spec.name] is command.run
        assert cli.PIPELINES[spec.workflow_type] is command.PIPELINE
        assert runs_cmd.WORKFLOW_TYPE_OF[spec.name] == spec.workflow_type
        assert spec.name in SEARCHABLE
        assert spec.implementation() in WORKFLOWS and spec.implementation().__name__ == spec.workflow_type
        assert PRIORITY_KEYS[spec.name] == spec.priority
        assert list(progress_of(spec.name, {})) == [*spec.progress, "cost_usd"]


def test_the_world_layout_reads_back_what_its_writer_names():
    world = "acme.world-1"
    keys = [
        world_key(world, "world.json"),
        world_key(world, "background.jpeg"),
        world_key(world, "icon.jpeg"),
        world_key(world, "manifest.json"),
        character_key(world, "nell", "profile.json"),
        character_key(world, "nell", "avatar.jpeg"),
        post_key(world, "nell", 1, "json"),
        post_key(world, "nell", 1, "jpeg"),
        post_key(world, "nell", 2, "json"),
        character_key(world, "nell", "character.json"),
        character_key(world, "ada", "profile.json"),
    ]
    stored = stored_world(world, reversed(keys))
    assert (stored.description, stored.background, stored.icon, stored.manifest) == tuple(keys[:4])
    assert list(stored.characters) == ["ada", "nell"]
    nell = stored.characters["nell"]
    assert (nell.profile, nell.avatar, nell.manifest) == (keys[4], keys[5], keys[9])
    assert nell.posts == {1: keys[6], 2: keys[8]} and nell.pictures == {1: keys[7]}
    ada = stored.characters["ada"]
    assert ada.avatar is None and ada.manifest is None and not ada.posts
    assert all(key.endswith(PICTURE) for key in (stored.background, stored.icon, nell.avatar, *nell.pictures.values()))
