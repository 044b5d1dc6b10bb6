"""Tables owned by the shared foundations (SQLAlchemy Core); services declare their own beside their repos.

The ``metadata`` object collects every table so Alembic can compare the models with a live database.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Which process holds which snowflake worker id, until when (Unix ms).
worker_leases = Table(
    "worker_leases",
    metadata,
    Column("worker_id", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(128), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)
