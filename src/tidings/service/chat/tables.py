"""The chat service's tables (SQLAlchemy Core). Times are Unix milliseconds, ids are snowflakes.

Published: chat's jobs read and write them too (through ``tidings.service.chat.store``), so the two never disagree
on a column; the task module counts ``messages`` and ``conversations`` for its activity rollups.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from tidings.pkg.schema import new_metadata

metadata = new_metadata()

# Client message ids are compared byte for byte ("Ab" and "ab" are two ids); MySQL's default collation would fold
# case, so on MySQL they are ASCII with a binary collation (SQLite compares bytes anyway).
CLIENT_MSG_ID = String(64).with_variant(mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb")

# The values of ``conversations.kind``.
KIND_DIRECT = 1
KIND_GROUP = 2

conversations = Table(
    "conversations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    # KIND_DIRECT or KIND_GROUP (chat's biz.model.Kind).
    Column("kind", SmallInteger, nullable=False),
    Column("title", String(128), nullable=False, default=""),
    Column("owner_id", BigInteger, nullable=False, default=0),
    Column("member_count", Integer, nullable=False, default=0),
    # The highest seq stored in ``messages`` (the persist job moves it, never backwards).
    Column("max_seq", BigInteger, nullable=False, default=0),
    # The durable seq counter: every seq up to here has been leased to an allocator, and never will be again.
    Column("seq_leased", BigInteger, nullable=False, default=0),
    Column("last_message_id", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    # Set when an operator deleted the group: it has no members left and is served to no one (its messages stay).
    Column("deleted_at_ms", BigInteger, nullable=True),
    # New conversations per hour and day (the task module's activity rollups).
    Index("ix_conversations_created_at_ms", "created_at_ms"),
)

conversation_members = Table(
    "conversation_members",
    metadata,
    Column("conversation_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    # 1 owner, 2 member (biz.model.Role).
    Column("role", SmallInteger, nullable=False),
    Column("read_seq", BigInteger, nullable=False, default=0),
    Column("joined_at_ms", BigInteger, nullable=False),
    # Set when the member left or was removed; kept so a former member hears NOT_A_MEMBER.
    Column("left_at_ms", BigInteger, nullable=True),
    PrimaryKeyConstraint("conversation_id", "user_id"),
    # "My conversations".
    Index("ix_conversation_members_user_id", "user_id", "conversation_id"),
)

# One row per unordered pair (user_low < user_high): the key that makes creating a direct conversation idempotent.
direct_pairs = Table(
    "direct_pairs",
    metadata,
    Column("user_low", BigInteger, nullable=False),
    Column("user_high", BigInteger, nullable=False),
    Column("conversation_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_low", "user_high"),
)

messages = Table(
    "messages",
    metadata,
    Column("conversation_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("id", BigInteger, nullable=False),
    Column("sender_id", BigInteger, nullable=False),
    Column("client_msg_id", CLIENT_MSG_ID, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("recalled", Boolean, nullable=False, default=False),
    PrimaryKeyConstraint("conversation_id", "seq"),
    UniqueConstraint("id"),
    UniqueConstraint("sender_id", "client_msg_id"),
    # An hour's or a day's messages, their distinct senders and busiest conversations, from the index alone (the
    # task module's activity rollups).
    Index("ix_messages_created_at_ms_sender_id", "created_at_ms", "sender_id"),
)

# The dedup store: one reservation per (sender, client message id), holding the message it stands for.
message_reservations = Table(
    "message_reservations",
    metadata,
    Column("sender_id", BigInteger, nullable=False),
    Column("client_msg_id", CLIENT_MSG_ID, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("conversation_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    # The bus acknowledged the message.
    Column("sent", Boolean, nullable=False, default=False),
    # Until when the current owner may produce it undisturbed; 0 once released.
    Column("lease_until_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("sender_id", "client_msg_id"),
    # The pruning of reservations past their retry window, oldest first.
    Index("ix_message_reservations_created_at_ms", "created_at_ms"),
)
