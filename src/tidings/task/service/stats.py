"""The stats entry of the schedule."""

from __future__ import annotations

from tidings.task.biz.stats import StatsRollup
from tidings.task.service.jobs import Job

STATS = "stats"

# A backfill of max_buckets hours and days, or a day's counts on a busy deployment, takes longer than a prune; a
# run cut short by its timeout has stored (and checkpointed) every bucket it finished.
STATS_TIMEOUT_S = 600.0


def stats(rollup: StatsRollup, *, schedule: str | None) -> Job:
    return Job(STATS, schedule=schedule, run=rollup.run, preview=rollup.preview, timeout_s=STATS_TIMEOUT_S)
