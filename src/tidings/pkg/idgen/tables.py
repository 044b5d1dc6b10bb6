"""The id generator's table: which process holds which snowflake worker id, until when (Unix ms)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table

from tidings.pkg.schema import new_metadata

metadata = new_metadata()

worker_leases = Table(
    "worker_leases",
    metadata,
    Column("worker_id", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(128), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)
