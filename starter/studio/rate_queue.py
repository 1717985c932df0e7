"""An experiment's blind annotation queue: every pair of its finished cells' pictures made for one row under two
variants, those the rater has not voted on yet, and the next one in random order with its sides shuffled.

Blind: the page names a picture only by the token blind mode gives it (`experiment_grid.picture_token`, a MAC
of the cell; its artifact key would name the cell's run, and so its variant), and says nothing of any model or
variant until the vote (not after either: the next pair's page would hold it)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

from kit.db.ratings import pair_of
from models.experiment import ExperimentStatus
from starter.studio.experiment_grid import picture_token


@dataclass(frozen=True)
class Picture:
    """A finished cell's picture: its token (what the page may show) and its artifact key (what it may not)."""

    token: str
    key: str
    row: int
    variant: int


@dataclass(frozen=True)
class Pair:
    a: Picture
    b: Picture

    @property
    def digest(self) -> str:
        return pair_of(self.a.key, self.b.key)


@dataclass(frozen=True)
class Queue:
    pairs: list[Pair]  # every pair the experiment has so far
    voted: int  # how many of them the rater has voted on
    next: Pair | None  # the next to show (None: all voted)
    labels: list[str]  # each row's label (its prompt, or its `id`)

    @property
    def total(self) -> int:
        return len(self.pairs)


def pictures(grid: ExperimentStatus, secret: str, experiment_id: str) -> list[Picture]:
    """The pictures of the experiment's completed cells, each with its token."""
    return [
        Picture(picture_token(secret, experiment_id, o.cell, o.attempt), o.picture, o.row, o.variant)
        for o in grid.outcomes
        if o.status == "completed" and o.picture
    ]


def pairs_of(found: list[Picture]) -> list[Pair]:
    """Every two pictures of one row under different variants."""
    by_row = sorted(found, key=lambda p: (p.row, p.variant, p.token))
    return [
        Pair(a, b)
        for _, row in itertools.groupby(by_row, key=lambda p: p.row)
        for a, b in itertools.combinations(list(row), 2)
        if a.variant != b.variant
    ]


def shuffled(pair: Pair) -> Pair:
    """The same pair, its sides in random order."""
    return Pair(pair.b, pair.a) if secrets.randbelow(2) else pair


def queue(
    grid: ExperimentStatus, secret: str, experiment_id: str, voted: set[str], asked: tuple[str, str] | None
) -> Queue:
    """The queue as the rater stands in it: `asked`, the pair a page asks for by its tokens (one undone a
    moment ago), comes next when it is an unvoted pair of the experiment, as asked (its sides kept)."""
    every = pairs_of(pictures(grid, secret, experiment_id))
    left = [pair for pair in every if pair.digest not in voted]
    chosen = next((p for p in left if asked in ((p.a.token, p.b.token), (p.b.token, p.a.token))), None)
    if chosen is not None and (chosen.a.token, chosen.b.token) != asked:
        chosen = Pair(chosen.b, chosen.a)
    if chosen is None and left:
        chosen = shuffled(left[secrets.randbelow(len(left))])
    return Queue(every, len(every) - len(left), chosen, grid.labels)


def by_token(grid: ExperimentStatus, secret: str, experiment_id: str, token: str) -> Picture | None:
    return next((p for p in pictures(grid, secret, experiment_id) if p.token == token), None)


def by_key(grid: ExperimentStatus, secret: str, experiment_id: str, key: str) -> Picture | None:
    return next((p for p in pictures(grid, secret, experiment_id) if p.key == key), None)
