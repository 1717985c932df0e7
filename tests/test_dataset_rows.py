"""Hostile dataset files are refused naming their line (422 over the API, exit 2 in the CLI), never an error
past `read_rows`: JSON nested past `MAX_DEPTH` (or past Python's recursion limit), NaN and Infinity (which
PostgreSQL's JSON and a workflow's input refuse), and a CSV cell past the csv module's field limit."""

from __future__ import annotations

import pytest

from kit.datasets import MAX_DEPTH, BadDataset, read_rows


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("data", "name", "line", "says"),
    [
        (b'{"prompt": "a"}\n{"id": ' + nested(5000) + b"}\n", "rows.jsonl", 2, "nested deeper"),
        (b'{"id": ' + nested(MAX_DEPTH) + b"}\n", "rows.jsonl", 1, "nested deeper"),
        (b'{"prompt": "a", "threshold": NaN}\n', "rows.jsonl", 1, "NaN"),
        (b'{"prompt": "a", "threshold": -Infinity}\n', "rows.jsonl", 1, "Infinity"),
        (b'prompt,references\na,"' + nested(5000) + b'"\n', "rows.csv", 2, "nested deeper"),
        (b'prompt,references\na,"[NaN]"\n', "rows.csv", 2, "NaN"),
        (b'prompt\na\n"' + b"x" * 200_000 + b'"\n', "rows.csv", 3, "not CSV"),
        (b'"' + b"x" * 200_000 + b'"\na\n', "rows.csv", 1, "not CSV"),
    ],
)
def test_a_hostile_line_is_named(data: bytes, name: str, line: int, says: str) -> None:
    with pytest.raises(BadDataset) as refused:
        read_rows(data, name)
    assert refused.value.line == line and says in refused.value.message, str(refused.value)


def test_rows_nested_up_to_the_limit_are_kept() -> None:
    rows = read_rows(b'{"prompt": "a", "id": ' + nested(MAX_DEPTH - 1) + b"}\n", "rows.jsonl")
    csv_rows = read_rows(b'prompt,references\na,"[{""url"": ""https://x""}]"\n', "rows.csv")
    assert rows[0]["prompt"] == "a" and csv_rows == [{"prompt": "a", "references": [{"url": "https://x"}]}]
