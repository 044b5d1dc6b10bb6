"""Chat service: send reservations indexed by age, for pruning those past their retry window.

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_message_reservations_created_at_ms"), "message_reservations", ["created_at_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_message_reservations_created_at_ms"), table_name="message_reservations")
