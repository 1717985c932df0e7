"""Datasets for experiments: rows read from a JSONL or CSV file (bounded in size and rows; a bad line is named),
and saved per tenant for reuse by id (`DatasetStore`). The API's `POST /v1/datasets` and the CLI's `experiment
<file>` read files the same way.

A JSONL line is one JSON object. A CSV file has a header of field paths (`prompt`, `options.quality`, `id`); an
empty cell is left out, and a cell that starts with `[` or `{` is read as JSON (`references`). The id of a saved
dataset is the digest of its rows, so the same rows saved twice are one dataset.

`DatasetStore` keeps each tenant's datasets in the database (`kit.db.datasets`), which every API process on it
shares; a dataset an earlier release kept in the artifact store (`datasets/<tenant>/<id>.json`) is read from
there while the database has none by its id."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from kit.db import Database
from kit.db.datasets import NAME, Dataset, Datasets
from kit.storage import ArtifactStore, artifact_key
from models.experiment import MAX_ROWS

MAX_BYTES = 1024 * 1024  # an experiment carries its rows in its history (`starter.experiment_plan`)
ROW_BYTES = 64 * 1024  # one row at most (a prompt and a few references)
MAX_DEPTH = 16  # a row's nesting at most (objects and lists within it): deeper ones cannot be started or stored
DATASET_ID = re.compile(r"ds-[0-9a-f]{16}")  # what `dataset_id` makes


class BadDataset(ValueError):
    """A file that is not a dataset: `line` (1-based; 0: the file as a whole) and what is wrong there."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


class SavedDataset(BaseModel):
    """A dataset as `POST /v1/datasets` answers it (and `DatasetStore` keeps it, with its rows)."""

    id: str
    name: str
    rows: int
    columns: list[str]
    created_at: datetime


class StoredDataset(SavedDataset):
    data: list[dict[str, Any]] = Field(default_factory=list)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # NaN and Infinity: no database or workflow input takes them


def _json(text: str) -> Any:
    """JSON without NaN or Infinity, nested at most MAX_DEPTH deep (ValueError otherwise)."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
        deep = _depth(value) > MAX_DEPTH
    except RecursionError:
        deep = True
    if deep:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((_depth(item) for item in items), default=0)
    return 0


def _csv_cell(text: str) -> Any:
    return _json(text) if text.lstrip().startswith(("[", "{")) else text


def read_rows(data: bytes, name: str) -> list[dict[str, Any]]:
    """The rows of a `.csv` file (by its name, or a first line with a comma and no `{`), else of a JSONL file."""
    if len(data) > MAX_BYTES:
        raise BadDataset(0, f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadDataset(0, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    first = text.lstrip().split("\n", 1)[0]
    is_csv = name.lower().endswith(".csv") or ("," in first and not first.startswith("{"))
    rows = _csv_rows(text) if is_csv else _jsonl_rows(text)
    if not rows:
        raise BadDataset(0, "no rows")
    return rows


def _jsonl_rows(text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        _check_size(number, line, len(rows))
        try:
            row = _json(line)
        except json.JSONDecodeError as exc:
            raise BadDataset(number, f"not JSON ({exc.msg})") from None
        except ValueError as exc:
            raise BadDataset(number, f"not a row ({exc})") from None
        if not isinstance(row, dict) or not row:
            raise BadDataset(number, "not a JSON object of a row's fields")
        rows.append(row)
    return rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if not header or not all(name.strip() for name in header):
            raise BadDataset(1, "the header must name every column")
        names = [name.strip() for name in header]
        rows: list[dict[str, Any]] = []
        for values in reader:
            if any(value.strip() for value in values):
                rows.append(_csv_row(reader.line_num, names, values, len(rows)))
    except csv.Error as exc:  # a cell past the csv module's field limit, a NUL byte
        raise BadDataset(reader.line_num, f"not CSV ({exc})") from None
    return rows


def _csv_row(number: int, names: list[str], values: list[str], rows: int) -> dict[str, Any]:
    _check_size(number, ",".join(values), rows)
    if len(values) != len(names):
        raise BadDataset(number, f"{len(values)} cells for {len(names)} columns")
    try:
        return {name: _csv_cell(value) for name, value in zip(names, values, strict=True) if value != ""}
    except json.JSONDecodeError as exc:
        raise BadDataset(number, f"a cell is not JSON ({exc.msg})") from None
    except ValueError as exc:
        raise BadDataset(number, f"a cell is not a value ({exc})") from None


def _check_size(number: int, line: str, rows: int) -> None:
    if rows >= MAX_ROWS:
        raise BadDataset(number, f"more than {MAX_ROWS} rows")
    if len(line.encode()) > ROW_BYTES:
        raise BadDataset(number, f"longer than {ROW_BYTES // 1024} KB")


def dataset_id(rows: list[dict[str, Any]]) -> str:
    canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"))
    return "ds-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


class DatasetStore:
    """A tenant's saved datasets, by id: in the database, or (saved by an earlier release) in the store."""

    def __init__(self, store: ArtifactStore, db: Database) -> None:
        self.store = store
        self.db = db

    async def save(self, tenant: str, name: str, rows: list[dict[str, Any]]) -> SavedDataset:
        """Keep the rows under their digest (the same rows again: the same dataset, kept as first saved)."""
        columns = sorted({column for row in rows for column in row})
        made = Dataset(
            id=dataset_id(rows),
            name=name[:NAME],
            row_count=len(rows),
            column_names=columns,
            data=rows,
            created_at=datetime.now(UTC),
        )

        def keep() -> StoredDataset:
            with self.db.writing() as session:
                return _stored(Datasets(session, tenant).keep(made))

        kept = await asyncio.to_thread(keep)
        return SavedDataset.model_validate(kept.model_dump(exclude={"data"}))

    async def get(self, tenant: str, dataset: str) -> StoredDataset | None:
        if not DATASET_ID.fullmatch(dataset):
            return None

        def found() -> StoredDataset | None:
            with self.db.reading() as session:
                row = Datasets(session, tenant).get(dataset)
                return _stored(row) if row is not None else None

        return await asyncio.to_thread(found) or await self._earlier(tenant, dataset)

    async def _earlier(self, tenant: str, dataset: str) -> StoredDataset | None:
        """A dataset as a release before the database kept it, in the artifact store."""
        key = artifact_key("datasets", tenant, f"{dataset}.json")
        if not await self.store.exists(key):
            return None
        return StoredDataset.model_validate_json(await self.store.read(key))


def _stored(row: Dataset) -> StoredDataset:
    return StoredDataset(
        id=row.id,
        name=row.name,
        rows=row.row_count,
        columns=row.column_names,
        created_at=row.created_at,
        data=row.data,
    )
