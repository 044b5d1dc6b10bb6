"""The account service's tables (SQLAlchemy Core). Times are Unix milliseconds, ids are snowflakes.

Published: the task module prunes ``refresh_tokens`` through ``tidings.service.account.store``, and counts new
``users`` for its activity rollups.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table

from tidings.pkg.schema import new_metadata

metadata = new_metadata()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", String(32), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("bio", String(280), nullable=False, default=""),
    Column("avatar_url", String(512), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("banned", Boolean, nullable=False, default=False),
    Column("tokens_valid_after_ms", BigInteger, nullable=False, default=0),
    # The last sign-in or token refresh (operators see it); NULL if none since migration 0012.
    Column("last_active_at_ms", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Index("ix_users_display_name", "display_name"),
    # New users per hour and day (the task module's activity rollups).
    Index("ix_users_created_at_ms", "created_at_ms"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("family_id", BigInteger, nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("spent_at_ms", BigInteger, nullable=True),
    Column("revoked_at_ms", BigInteger, nullable=True),
)

blocks = Table(
    "blocks",
    metadata,
    Column("blocker_id", BigInteger, primary_key=True, autoincrement=False),
    Column("blocked_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at_ms", BigInteger, nullable=False),
)
