"""Task module: the dead letters replayed to their source topics, so a replay never publishes one twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letter_replays",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition_id", sa.Integer(), nullable=False),
        sa.Column("record_offset", sa.BigInteger(), nullable=False),
        sa.Column("origin_topic", sa.String(length=249), nullable=False),
        sa.Column("replayed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition_id", "record_offset", name=op.f("pk_dead_letter_replays")),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_replays")
