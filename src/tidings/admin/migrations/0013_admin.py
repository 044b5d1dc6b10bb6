"""Back office: operators, their sessions, failed logins, and the append-only audit log.

The audit tables refuse UPDATE and DELETE by trigger, on SQLite and MySQL/MariaDB alike. In a deployment, also
grant the back office's database user no more than it needs on them (the migration runs as the schema owner):

    GRANT SELECT, INSERT ON tidings.admin_audit_entries TO 'tidings_admin'@'%';
    GRANT SELECT, INSERT ON tidings.admin_audit_outcomes TO 'tidings_admin'@'%';

(With binary logging on, creating the triggers needs ``log_bin_trust_function_creators=1`` or the SUPER privilege.)

Revision ID: 0013
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("admin",)
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = ("admin_audit_entries", "admin_audit_outcomes")


def upgrade() -> None:
    op.create_table(
        "admin_operators",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_operators")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_operators_username")),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index("ix_admin_sessions_expires", "admin_sessions", ["expires_at_ms"])
    op.create_table(
        "admin_login_failures",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_admin_login_failures")),
    )
    op.create_table(
        "admin_audit_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit_entries")),
    )
    op.create_index("ix_admin_audit_entries_at", "admin_audit_entries", ["at_ms"])
    op.create_index("ix_admin_audit_entries_target", "admin_audit_entries", ["target_kind", "target"])
    op.create_index("ix_admin_audit_entries_operator", "admin_audit_entries", ["operator_id", "at_ms"])
    op.create_table(
        "admin_audit_outcomes",
        sa.Column("entry_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_admin_audit_outcomes")),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in _APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            name = f"{table}_no_{verb.lower()}"
            if sqlite:
                op.execute(
                    f"CREATE TRIGGER {name} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
            else:
                op.execute(
                    f"CREATE TRIGGER {name} BEFORE {verb} ON {table} FOR EACH ROW "
                    f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{table} is append-only'"
                )


def downgrade() -> None:
    for table in _APPEND_ONLY:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    op.drop_table("admin_audit_outcomes")
    op.drop_table("admin_audit_entries")
    op.drop_table("admin_login_failures")
    op.drop_index("ix_admin_sessions_expires", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_operators")
