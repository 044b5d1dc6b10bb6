"""Task module: each task's lease (holder, fencing token, expiry) and checkpoint beside its last run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_runs", sa.Column("holder", sa.String(length=128), server_default="", nullable=False))
    op.add_column("task_runs", sa.Column("token", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("task_runs", sa.Column("lease_until_ms", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("task_runs", sa.Column("checkpoint", sa.String(length=256), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("checkpoint")
        batch.drop_column("lease_until_ms")
        batch.drop_column("token")
        batch.drop_column("holder")
