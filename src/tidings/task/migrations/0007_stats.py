"""Task module: the activity rollups of the stats task (per hour and day, each day's busiest conversations) and
where its next run starts.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_activity",
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("active_senders", sa.BigInteger(), nullable=False),
        sa.Column("new_users", sa.BigInteger(), nullable=False),
        sa.Column("new_conversations", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("computed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "start_ms", name=op.f("pk_stats_activity")),
    )
    op.create_table(
        "stats_top_conversations",
        sa.Column("day_ms", sa.BigInteger(), nullable=False),
        sa.Column("place", sa.SmallInteger(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day_ms", "place", name=op.f("pk_stats_top_conversations")),
    )
    op.create_table(
        "stats_checkpoints",
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("done_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grain", name=op.f("pk_stats_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("stats_checkpoints")
    op.drop_table("stats_top_conversations")
    op.drop_table("stats_activity")
