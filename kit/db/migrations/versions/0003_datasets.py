"""Experiments' datasets (what the artifact store's `datasets/<tenant>/<id>.json` held before the database):
per tenant, by the digest of their rows.

Revision ID: 0003_datasets
Revises: 0002_ratings
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_datasets"
down_revision = "0002_ratings"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)  # kit.db.base.UTCDateTime stores this


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("column_names", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id", name=op.f("pk_datasets")),
    )


def downgrade() -> None:
    op.drop_table("datasets")
