"""Tables of the embedded log's own SQLite file, created when the log opens.

This file belongs to the log alone (like a Kafka broker's log dir), not to the service database, so it has no
Alembic migrations: the schema is created with ``CREATE TABLE IF NOT EXISTS`` at open.
"""

from __future__ import annotations

import base64
import json

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text

from tidings.pkg.bus.records import Headers

metadata = MetaData()

# A topic and its fixed partition count.
topics = Table(
    "topics",
    metadata,
    Column("name", String(249), primary_key=True),
    Column("partitions", Integer, nullable=False),
)

# One row per partition: the offset the next record gets. Bumping it first takes SQLite's write lock before any
# read, so two writers (even in two processes) never hand out the same offset.
partitions = Table(
    "partitions",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", BigInteger, nullable=False),
)

# The append-only log; the primary key is the read order, so the table is stored clustered on it.
records = Table(
    "records",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("offset", BigInteger, primary_key=True, autoincrement=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", Text, nullable=True),
    Column("timestamp_ms", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# A consumer group's committed next offset per partition.
group_offsets = Table(
    "group_offsets",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)


def encode_headers(headers: Headers) -> str | None:
    """Headers as JSON pairs with base64 values (values are bytes); ``None`` when there are none."""
    if not headers:
        return None
    return json.dumps([[name, base64.b64encode(value).decode("ascii")] for name, value in headers])


def decode_headers(stored: str | None) -> Headers:
    if not stored:
        return ()
    return tuple((str(name), base64.b64decode(value)) for name, value in json.loads(stored))
