"""`atelier models`: the catalog's models a run may choose (`--model`, `--image-model`, `--eval-model`), as a
table or, with `--json`, exactly as `GET /v1/models` answers. Read from the same catalog the API and the
workers load (`models.catalog.load_catalog`); nothing connects."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from models.api import ModelList, ModelView
from models.settings import Settings
from starter.common import catalog_or_explain, stderr


def add_parser(sub: Any) -> None:
    models = sub.add_parser("models", help="list the models a run may choose, per kind, with the defaults")
    models.add_argument("--json", action="store_true", help="as GET /v1/models answers (OpenAI's list shape)")


def price_of(model: ModelView) -> str:
    price = model.price
    if price is None:
        return "price table"
    parts = [f"${price.input_per_mtok:g}/${price.output_per_mtok:g} per Mtok"] if price.input_per_mtok else []
    return " · ".join(parts + ([f"${price.per_image:g} per image"] if price.per_image else [])) or "free"


def print_table(listed: ModelList) -> None:
    table = Table(box=None, pad_edge=False)
    for name in ("id", "kinds", "default for", "owned by", "price"):
        table.add_column(name, no_wrap=name == "id")
    for model in listed.data:
        table.add_row(model.id, ", ".join(model.kinds), ", ".join(model.default), model.owned_by, price_of(model))
    Console(soft_wrap=True, highlight=False, width=400).print(table)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    catalog = catalog_or_explain(settings)
    listed = ModelList.of(catalog)
    if args.json:
        print(listed.model_dump_json(indent=2))
        return 0
    print_table(listed)
    stderr.print(f"catalog: {catalog.source}")
    return 0
