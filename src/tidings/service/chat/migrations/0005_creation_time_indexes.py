"""Chat service: messages and conversations by creation time, for range scans over an hour or a day (the task
module's activity rollups).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # With the sender beside the time (and the primary key, conversation and seq, in every InnoDB secondary index)
    # an hour's count, its distinct senders and a day's busiest conversations read the index alone.
    op.create_index("ix_messages_created_at_ms_sender_id", "messages", ["created_at_ms", "sender_id"])
    op.create_index("ix_conversations_created_at_ms", "conversations", ["created_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_conversations_created_at_ms", table_name="conversations")
    op.drop_index("ix_messages_created_at_ms_sender_id", table_name="messages")
