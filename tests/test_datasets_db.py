"""Experiments' datasets in the database (#44): one saved through `POST /v1/datasets` (real uvicorn, keyed) is a
row of the tenant's in the SQLite file, nothing in the artifact store; it is read again after the API restarts,
by its tenant only; one an earlier release kept in the artifact store is still found; and the repository keeps
a dataset once per tenant on SQLite and PostgreSQL alike.

The API here never reaches Temporal (saving a dataset and planning an experiment that the plan refuses do
not): its client is lazy, to an address where nothing listens."""

# ruff: noqa: F811 — the database fixtures are imported from tests/db_support.py and taken as arguments

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client

from kit.api_keys import KeyStore
from kit.datasets import StoredDataset, dataset_id
from kit.db import Database, upgrade
from kit.db.datasets import Dataset, Datasets
from kit.storage import LocalStore
from tests.api_support import api_settings, http, serving
from tests.db_support import database_address, pg_database, postgres  # noqa: F401

NOWHERE = "127.0.0.1:1"  # no Temporal: nothing these tests do reaches it
# the second row's threshold is out of range: planning an experiment over the rows refuses it by its row,
# which shows the rows were read (a dataset not found is refused as `body.dataset.id` instead)
ROWS = b'{"prompt": "a red kite", "id": "kite"}\n{"prompt": "a blue whale", "threshold": 300}\n'
EARLIER_ROWS = [{"prompt": "a green frog"}, {"prompt": "a grey owl"}, {"prompt": "a cat", "threshold": 300}]


def experiment(dataset: str) -> dict:
    return {"pipeline": "image", "dataset": {"id": dataset}, "variants": [{"name": "a"}]}


def problem_field(answer) -> str:
    assert answer.status_code == 422, answer.text
    return answer.json()["errors"][0]["field"]


async def test_a_saved_dataset_is_in_the_database_survives_a_restart_and_is_its_tenants_alone(tmp_path: Path):
    settings = api_settings(NOWHERE, tmp_path / "data")
    keys = KeyStore(settings)
    acme, zeta = keys.add("acme")[0], keys.add("zeta")[0]
    temporal = await Client.connect(NOWHERE, lazy=True)
    earlier = StoredDataset(  # as the release before the database kept it
        id=dataset_id(EARLIER_ROWS),
        name="earlier.jsonl",
        rows=len(EARLIER_ROWS),
        columns=["prompt", "threshold"],
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        data=EARLIER_ROWS,
    )
    store = LocalStore(settings.artifact_dir)
    await store.put(f"datasets/acme/{earlier.id}.json", earlier.model_dump_json().encode(), "application/json")

    async with serving(settings, temporal) as (base, _), http(base, acme) as client:
        saved = await client.post("/v1/datasets", files={"file": ("rows.jsonl", ROWS)})
        assert saved.status_code == 201, saved.text
        dataset = saved.json()
    assert dataset["rows"] == 2 and dataset["columns"] == ["id", "prompt", "threshold"]

    with sqlite3.connect(settings.data_dir / "atelier.db") as connection:  # the file itself holds it
        kept = connection.execute("SELECT tenant, id, name, row_count FROM datasets").fetchall()
    assert kept == [("acme", dataset["id"], "rows.jsonl", 2)]
    assert not (settings.artifact_dir / "datasets" / "acme" / f"{dataset['id']}.json").exists(), "not in the store"

    async with serving(settings, temporal) as (base, _):  # another API on the same data
        async with http(base, acme) as client:
            assert problem_field(await client.post("/v1/experiments", json=experiment(dataset["id"]))) == (
                "body.dataset.rows[1].threshold"
            ), "acme's dataset, read from the database after the restart"
            assert problem_field(await client.post("/v1/experiments", json=experiment(earlier.id))) == (
                "body.dataset.rows[2].threshold"
            ), "a dataset an earlier release saved in the store"
            unknown = await client.post("/v1/experiments", json=experiment("ds-0123456789abcdef"))
            assert problem_field(unknown) == "body.dataset.id"
            again = await client.post("/v1/datasets", files={"file": ("again.jsonl", ROWS)})
            assert again.json() == dataset, "the same rows: the dataset first saved"
        async with http(base, zeta) as client:
            for other in (dataset["id"], earlier.id):
                refused = await client.post("/v1/experiments", json=experiment(other))
                assert problem_field(refused) == "body.dataset.id", "another tenant's dataset is not zeta's"


def test_a_dataset_is_kept_once_per_tenant_on_sqlite_and_postgresql(database_address):
    db = Database(database_address)
    upgrade(db)
    rows = [{"prompt": "a kite"}]

    def made(name: str) -> Dataset:
        return Dataset(
            id=dataset_id(rows),
            name=name,
            row_count=1,
            column_names=["prompt"],
            data=rows,
            created_at=datetime.now(UTC),
        )

    with db.writing() as session:
        first = Datasets(session, "acme").keep(made("first.jsonl"))
        second = Datasets(session, "acme").keep(made("second.jsonl"))
    assert (first.name, second.name, second.created_at) == ("first.jsonl", "first.jsonl", first.created_at)
    with db.reading() as session:
        assert Datasets(session, "acme").get(first.id).data == rows
        assert Datasets(session, "zeta").get(first.id) is None
