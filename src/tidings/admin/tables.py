"""The back office's own tables: operators (apart from chat users), their sessions, failed logins per username,
and the audit log: one entry per action, written before anything of it is done, and one outcome per entry,
written after. Both audit tables are append-only: the migration puts triggers on them that refuse UPDATE and DELETE, and
the deployment grants the back office's database user INSERT and SELECT only on them (``migrations/0013``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from tidings.pkg.schema import new_metadata

metadata = new_metadata()

operators = Table(
    "admin_operators",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    # Lower-cased; compared as typed by a lower-cased login.
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    # viewer, moderator, admin
    Column("role", String(16), nullable=False),
    # Base32; empty when the operator has no second factor.
    Column("totp_secret", String(64), nullable=False, default=""),
    Column("created_at_ms", BigInteger, nullable=False),
)

sessions = Table(
    "admin_sessions",
    metadata,
    # SHA-256 of the session token (hex): a leaked table holds no usable token.
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", BigInteger, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Index("ix_admin_sessions_expires", "expires_at_ms"),
)

# Failed logins per username, existing or not, so a lockout tells nothing about who exists.
login_failures = Table(
    "admin_login_failures",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

audit_entries = Table(
    "admin_audit_entries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("operator_id", BigInteger, nullable=False),
    Column("operator", String(64), nullable=False),
    # ban_user, unban_user, remove_message, delete_group, reset_password, create_operator
    Column("action", String(32), nullable=False),
    # user, message, conversation, operator
    Column("target_kind", String(16), nullable=False),
    # The target's id (a message: "<conversation_id>/<seq>").
    Column("target", String(64), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Index("ix_admin_audit_entries_at", "at_ms"),
    Index("ix_admin_audit_entries_target", "target_kind", "target"),
    Index("ix_admin_audit_entries_operator", "operator_id", "at_ms"),
)

audit_outcomes = Table(
    "admin_audit_outcomes",
    metadata,
    Column("entry_id", BigInteger, primary_key=True, autoincrement=False),
    Column("at_ms", BigInteger, nullable=False),
    # ok, failed
    Column("outcome", String(8), nullable=False),
    # The failure's reason and message; empty when it succeeded.
    Column("error", String(512), nullable=False),
    # JSON: the target as it was before the action and afterwards, where it applies.
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
)
