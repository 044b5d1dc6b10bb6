"""The task module's tables: one row per scheduled task, holding its lease (which process runs it now, and the
fencing token of that hold) and its last run, so whichever instance runs the schedule next knows when the task last
started (it runs once per scheduled time, across restarts and hand-overs) and how it ended; the activity rollups of
the ``stats`` task (published: ``tidings.task.store.stats`` reads them for the admin module); and the dead letters
replayed, so none is replayed twice."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, PrimaryKeyConstraint, SmallInteger, String, Table

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

# One row per bucket: a UTC hour or day (``tidings.task.stats.Grain``) and its counts, replaced whenever the bucket
# is computed again.
stats_activity = Table(
    "stats_activity",
    metadata,
    # hour, day
    Column("grain", String(8), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("active_senders", BigInteger, nullable=False),
    Column("new_users", BigInteger, nullable=False),
    Column("new_conversations", BigInteger, nullable=False),
    # False while the bucket may still change (it is recomputed at every run until then).
    Column("complete", Boolean, nullable=False),
    Column("computed_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("grain", "start_ms"),
)

# Each UTC day's busiest conversations, 1 the busiest; replaced with the day's row of ``stats_activity``.
stats_top_conversations = Table(
    "stats_top_conversations",
    metadata,
    Column("day_ms", BigInteger, nullable=False),
    Column("place", SmallInteger, nullable=False),
    Column("conversation_id", BigInteger, nullable=False),
    Column("messages", BigInteger, nullable=False),
    PrimaryKeyConstraint("day_ms", "place"),
)

# Per grain, where the next run starts: every bucket before ``done_until_ms`` is complete and stored.
stats_checkpoints = Table(
    "stats_checkpoints",
    metadata,
    Column("grain", String(8), primary_key=True),
    Column("done_until_ms", BigInteger, nullable=False),
)

# Each dead letter replayed to its source topic, by its place in its dead-letter topic (the records of a topic never
# move, and Kafka never reuses an offset).
dead_letter_replays = Table(
    "dead_letter_replays",
    metadata,
    Column("topic", String(249), nullable=False),
    Column("partition_id", Integer, nullable=False),
    Column("record_offset", BigInteger, nullable=False),
    Column("origin_topic", String(249), nullable=False),
    Column("replayed_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("topic", "partition_id", "record_offset"),
)
