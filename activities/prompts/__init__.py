"""Prompt templates, one text file each; `render(name, **fields)` fills one in."""

from __future__ import annotations

from functools import cache
from pathlib import Path

FOLDER = Path(__file__).parent


@cache
def template(name: str) -> str:
    return (FOLDER / f"{name}.txt").read_text()


def render(name: str, **fields: object) -> str:
    return template(name).format(**fields).strip()
