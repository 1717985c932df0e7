"""People's verdicts: what each rated artifact was (its run, prompt, model or variant, the judge's score),
ratings (one per rater and artifact) and pairwise votes (one per rater and pair).

Revision ID: 0002_ratings
Revises: 0001_keys
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ratings"
down_revision = "0001_keys"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)  # kit.db.base.UTCDateTime stores this
KEY = sa.String(512)
RUN = sa.String(255)
ARTIFACT = ["rated_artifacts.tenant", "rated_artifacts.key"]


def upgrade() -> None:
    op.create_table(
        "rated_artifacts",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("run", RUN, nullable=False),
        sa.Column("pipeline", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("judge", sa.String(128), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("experiment", RUN, nullable=True),
        sa.Column("variant", sa.String(160), nullable=True),
        sa.Column("row", sa.Integer(), nullable=True),
        sa.Column("recorded_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "key", name=op.f("pk_rated_artifacts")),
    )
    op.create_index("ix_rated_artifacts_tenant_run", "rated_artifacts", ["tenant", "run"])
    op.create_index("ix_rated_artifacts_tenant_experiment", "rated_artifacts", ["tenant", "experiment"])
    op.create_table(
        "ratings",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("rater", sa.String(16), nullable=False),
        sa.Column("artifact", KEY, nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("rated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["tenant", "artifact"], ARTIFACT, name="fk_ratings_artifact_rated_artifacts"),
        sa.PrimaryKeyConstraint("tenant", "rater", "artifact", name=op.f("pk_ratings")),
    )
    op.create_table(
        "votes",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("rater", sa.String(16), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("a", KEY, nullable=False),
        sa.Column("b", KEY, nullable=False),
        sa.Column("winner", sa.String(4), nullable=False),
        sa.Column("experiment", RUN, nullable=True),
        sa.Column("voted_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["tenant", "a"], ARTIFACT, name="fk_votes_a_rated_artifacts"),
        sa.ForeignKeyConstraint(["tenant", "b"], ARTIFACT, name="fk_votes_b_rated_artifacts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("tenant", "rater", "pair", name="uq_votes_rater_pair"),
    )
    op.create_index("ix_votes_tenant_experiment", "votes", ["tenant", "experiment"])


def downgrade() -> None:
    op.drop_index("ix_votes_tenant_experiment", "votes")
    op.drop_table("votes")
    op.drop_table("ratings")
    op.drop_index("ix_rated_artifacts_tenant_experiment", "rated_artifacts")
    op.drop_index("ix_rated_artifacts_tenant_run", "rated_artifacts")
    op.drop_table("rated_artifacts")
