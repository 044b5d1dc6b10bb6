"""The task module's table: each scheduled task's last run, so whichever instance runs the schedule next knows
when a task last started (it runs once per scheduled time, across restarts and hand-overs) and how it ended."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from tidings.pkg.schema import new_metadata

metadata = new_metadata()

task_runs = Table(
    "task_runs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("started_at_ms", BigInteger, nullable=False),
    # Null while the run is in progress (or if its process died during it).
    Column("finished_at_ms", BigInteger, nullable=True),
    # running, ok, error, timeout
    Column("outcome", String(16), nullable=False),
    Column("items", BigInteger, nullable=False, default=0),
    Column("error", String(512), nullable=False, default=""),
)
