"""The task module's table: one row per scheduled task, holding its lease (which process runs it now, and the fencing
token of that hold) and its last run, so whichever instance runs the schedule next knows when the task last started
(it runs once per scheduled time, across restarts and hand-overs) and how it ended."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from tidings.pkg.schema import new_metadata

metadata = new_metadata()

task_runs = Table(
    "task_runs",
    metadata,
    Column("name", String(64), primary_key=True),
    # The lease: its holder (a process), the fencing token of the current hold (one more at each take-over), and
    # until when it holds (0: free).
    Column("holder", String(128), nullable=False, default="", server_default=""),
    Column("token", BigInteger, nullable=False, default=0, server_default="0"),
    Column("lease_until_ms", BigInteger, nullable=False, default=0, server_default="0"),
    # The last run; an empty outcome: the task never ran (its lease was taken, nothing more).
    Column("started_at_ms", BigInteger, nullable=False),
    # Null while the run is in progress (or if its runner died or lost its lease during it).
    Column("finished_at_ms", BigInteger, nullable=True),
    # running, ok, error, timeout
    Column("outcome", String(16), nullable=False),
    Column("items", BigInteger, nullable=False, default=0),
    Column("error", String(512), nullable=False, default=""),
    # Where the task goes on from at its next run (its own format: a cursor, a last completed bucket), written by
    # the lease holder only.
    Column("checkpoint", String(256), nullable=False, default="", server_default=""),
)
