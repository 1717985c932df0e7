"""People's verdicts on what runs made: ratings (1–5 stars, tags, a comment) and pairwise votes (A, B or a tie),
per tenant, each by a rater (an API key, by its public id). What a verdict is about is recorded once per tenant
and artifact (`RatedArtifact`: its run, prompt, model or experiment variant, and the judge's score and pass
mark when it was first rated), so the leaderboard, the judge's agreement and the export read one database and
no run. One rating per rater and artifact, one vote per rater and pair of artifacts: a second replaces it."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKeyConstraint,
    Index,
    Select,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from kit.db.base import Base, UTCDateTime, insert_new, now

KEY = 512  # an artifact key's longest
RUN = 255  # a workflow id's longest (Temporal's default limit)


class RatedArtifact(Base):
    """What an artifact a tenant rated or voted on was: recorded the first time, never changed (a run's
    artifacts and their scores do not change once made)."""

    __tablename__ = "rated_artifacts"
    __table_args__ = (
        Index("ix_rated_artifacts_tenant_run", "tenant", "run"),
        Index("ix_rated_artifacts_tenant_experiment", "tenant", "experiment"),
    )

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    run: Mapped[str] = mapped_column(String(RUN))
    pipeline: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # iteration, meme, avatar, post, picture
    prompt: Mapped[str] = mapped_column(Text)  # the job's prompt or topic: votes pair artifacts of one prompt
    model: Mapped[str | None] = mapped_column(String(128))  # the catalog id of the model that made it
    judge: Mapped[str | None] = mapped_column(String(128))  # and of the evaluator that scored it
    score: Mapped[float | None] = mapped_column(Float)  # the judge's score, 0–100 (what the run compared)
    threshold: Mapped[float | None] = mapped_column(Float)  # the run's pass mark on the same scale
    experiment: Mapped[str | None] = mapped_column(String(RUN))  # the experiment whose cell made it
    variant: Mapped[str | None] = mapped_column(String(160))  # and that cell's variant
    row: Mapped[int | None] = mapped_column()  # and row
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "artifact"],
            ["rated_artifacts.tenant", "rated_artifacts.key"],
            name="fk_ratings_artifact_rated_artifacts",
        ),
    )

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    rater: Mapped[str] = mapped_column(String(16), primary_key=True)  # the key's public id ("local" keyless)
    artifact: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    stars: Mapped[int] = mapped_column()
    tags: Mapped[list[str]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Vote(Base):
    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("tenant", "rater", "pair", name="uq_votes_rater_pair"),
        Index("ix_votes_tenant_experiment", "tenant", "experiment"),
        ForeignKeyConstraint(
            ["tenant", "a"], ["rated_artifacts.tenant", "rated_artifacts.key"], name="fk_votes_a_rated_artifacts"
        ),
        ForeignKeyConstraint(
            ["tenant", "b"], ["rated_artifacts.tenant", "rated_artifacts.key"], name="fk_votes_b_rated_artifacts"
        ),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(32))
    rater: Mapped[str] = mapped_column(String(16))
    pair: Mapped[str] = mapped_column(String(64))  # the two keys in either order, digested: one vote a rater
    a: Mapped[str] = mapped_column(String(KEY))
    b: Mapped[str] = mapped_column(String(KEY))
    winner: Mapped[str] = mapped_column(String(4))  # a, b or tie
    experiment: Mapped[str | None] = mapped_column(String(RUN))  # both sides' experiment, when they share one
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime())


def pair_of(a: str, b: str) -> str:
    """The same for (a, b) and (b, a)."""
    return hashlib.sha256("\0".join(sorted((a, b))).encode()).hexdigest()


@dataclass(frozen=True)
class StoredVote:
    vote: Vote
    a: RatedArtifact
    b: RatedArtifact


def _upsert(session: Session, table: type[Base], keys: Sequence[str], values: dict[str, Any], changed: Sequence[str]):
    """Insert the row, or change `changed` on the one with the same `keys` (another process's a moment ago
    included): one statement that holds by itself. The row as it is now."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgres_insert
    statement = insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in changed}
    )
    return session.scalars(statement.returning(table).execution_options(populate_existing=True)).one()


class Ratings:
    """A tenant's verdicts in one session."""

    def __init__(self, session: Session, tenant: str) -> None:
        self.session = session
        self.tenant = tenant

    # --- what was rated --------------------------------------------------------------------------------
    def facts(self, key: str) -> RatedArtifact | None:
        return self.session.get(RatedArtifact, (self.tenant, key))

    def record(self, facts: RatedArtifact) -> None:
        """Keep what the artifact was, unless it is kept already."""
        values = {c.key: getattr(facts, c.key) for c in RatedArtifact.__table__.columns}
        insert_new(self.session, RatedArtifact, **(values | {"tenant": self.tenant, "recorded_at": now()}))

    # --- ratings ---------------------------------------------------------------------------------------
    def rate(self, rater: str, artifact: str, stars: int, tags: list[str], comment: str | None) -> Rating:
        """The rater's rating of the artifact, replacing the one it gave before."""
        values = {"tenant": self.tenant, "rater": rater, "artifact": artifact, "stars": stars}
        values |= {"tags": tags, "comment": comment, "rated_at": now()}
        return _upsert(
            self.session, Rating, ("tenant", "rater", "artifact"), values, ("stars", "tags", "comment", "rated_at")
        )

    def ratings(
        self, run: str | None = None, experiment: str | None = None, limit: int | None = None
    ) -> list[tuple[Rating, RatedArtifact]]:
        """The tenant's ratings (of one run's or one experiment's artifacts), newest first."""
        query = (
            select(Rating, RatedArtifact)
            .join(RatedArtifact, (RatedArtifact.tenant == Rating.tenant) & (RatedArtifact.key == Rating.artifact))
            .where(Rating.tenant == self.tenant)
        )
        query = _narrowed(query, RatedArtifact, run, experiment).order_by(Rating.rated_at.desc(), Rating.artifact)
        return [(rating, facts) for rating, facts in self.session.execute(query.limit(limit))]

    def stars_of(self, rater: str, keys: Sequence[str]) -> dict[str, int]:
        """The rater's stars for each of these artifacts it rated."""
        query = select(Rating.artifact, Rating.stars).where(
            Rating.tenant == self.tenant, Rating.rater == rater, Rating.artifact.in_(list(keys))
        )
        return {artifact: stars for artifact, stars in self.session.execute(query)}

    def stars_by(self, experiment: str | None = None) -> list[tuple[Any, ...]]:
        """The ratings grouped by what they rated and how: (model, variant, judge, score, threshold, stars,
        how many), for the leaderboard's stars and the judge's agreement (one row per group, not per rating)."""
        facts = (RatedArtifact.model, RatedArtifact.variant, RatedArtifact.judge, RatedArtifact.score)
        grouped = (*facts, RatedArtifact.threshold, Rating.stars)
        query = (
            select(*grouped, func.count())
            .join(Rating, (Rating.tenant == RatedArtifact.tenant) & (Rating.artifact == RatedArtifact.key))
            .where(RatedArtifact.tenant == self.tenant)
        )
        query = _narrowed(query, RatedArtifact, None, experiment).group_by(*grouped)
        return [tuple(row) for row in self.session.execute(query)]

    # --- votes -----------------------------------------------------------------------------------------
    def vote(self, rater: str, a: str, b: str, winner: str, experiment: str | None) -> Vote:
        """The rater's vote between the two, replacing the one it gave on the same pair (in either order)."""
        values = {"id": "vt_" + secrets.token_hex(8), "tenant": self.tenant, "rater": rater, "pair": pair_of(a, b)}
        values |= {"a": a, "b": b, "winner": winner, "experiment": experiment, "voted_at": now()}
        return _upsert(self.session, Vote, ("tenant", "rater", "pair"), values, ("a", "b", "winner", "voted_at"))

    def unvote(self, rater: str, vote_id: str) -> Vote | None:
        """Take back one of the rater's votes; the vote taken back, or None."""
        gone = delete(Vote).where(Vote.tenant == self.tenant, Vote.rater == rater, Vote.id == vote_id)
        return self.session.scalars(gone.returning(Vote)).first()

    def last_vote(self, rater: str, experiment: str | None) -> Vote | None:
        query = select(Vote).where(Vote.tenant == self.tenant, Vote.rater == rater, Vote.experiment == experiment)
        return self.session.scalar(query.order_by(Vote.voted_at.desc(), Vote.id.desc()).limit(1))

    def voted_pairs(self, rater: str, experiment: str) -> set[str]:
        query = select(Vote.pair).where(Vote.tenant == self.tenant, Vote.rater == rater, Vote.experiment == experiment)
        return set(self.session.scalars(query))

    def votes(
        self, run: str | None = None, experiment: str | None = None, limit: int | None = None
    ) -> list[StoredVote]:
        """The tenant's votes (on a run's artifacts, or in an experiment), newest first."""
        side_a, side_b = aliased(RatedArtifact), aliased(RatedArtifact)
        query = self._sides(select(Vote, side_a, side_b), side_a, side_b)
        if run is not None:
            query = query.where((side_a.run == run) | (side_b.run == run))
        if experiment is not None:
            query = query.where(Vote.experiment == experiment)
        query = query.order_by(Vote.voted_at.desc(), Vote.id).limit(limit)
        return [StoredVote(vote, a, b) for vote, a, b in self.session.execute(query)]

    def tally(self, by: str, experiment: str | None = None) -> list[tuple[str, str, str, int]]:
        """The votes between two named sides, counted per (side a, side b, winner): named by `by`, the
        artifacts' `model` or `variant` (votes with a side unnamed, or the same on both, are left out)."""
        side_a, side_b = aliased(RatedArtifact), aliased(RatedArtifact)
        name_a, name_b = getattr(side_a, by), getattr(side_b, by)
        query = self._sides(select(name_a, name_b, Vote.winner, func.count()), side_a, side_b)
        query = query.where(name_a.is_not(None), name_b.is_not(None), name_a != name_b)
        if experiment is not None:
            query = query.where(Vote.experiment == experiment)
        return [tuple(row) for row in self.session.execute(query.group_by(name_a, name_b, Vote.winner))]

    def judged(self, experiment: str | None = None) -> list[tuple[str, float, float, str, int]]:
        """The votes between two artifacts one evaluator scored, counted per (evaluator, score a, score b,
        winner)."""
        side_a, side_b = aliased(RatedArtifact), aliased(RatedArtifact)
        grouped = (side_a.judge, side_a.score, side_b.score, Vote.winner)
        query = self._sides(select(*grouped, func.count()), side_a, side_b).where(
            side_a.judge == side_b.judge, side_a.score.is_not(None), side_b.score.is_not(None)
        )
        if experiment is not None:
            query = query.where(Vote.experiment == experiment)
        return [tuple(row) for row in self.session.execute(query.group_by(*grouped))]

    def _sides(self, query: Select, side_a: Any, side_b: Any) -> Select:
        return (
            query.select_from(Vote)
            .join(side_a, (side_a.tenant == Vote.tenant) & (side_a.key == Vote.a))
            .join(side_b, (side_b.tenant == Vote.tenant) & (side_b.key == Vote.b))
            .where(Vote.tenant == self.tenant)
        )


def _narrowed(query: Select, facts: Any, run: str | None, experiment: str | None) -> Select:
    if run is not None:
        query = query.where(facts.run == run)
    if experiment is not None:
        query = query.where(facts.experiment == experiment)
    return query
