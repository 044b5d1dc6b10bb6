"""Task module: each scheduled task's last run.

Revision ID: 0004
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("task",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_task_runs")),
    )


def downgrade() -> None:
    op.drop_table("task_runs")
