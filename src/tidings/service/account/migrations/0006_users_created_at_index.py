"""Account service: users by creation time, for range scans over an hour or a day (the task module's activity
rollups count new users).

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_users_created_at_ms", "users", ["created_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_users_created_at_ms", table_name="users")
