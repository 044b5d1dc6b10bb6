"""The reindex entry: on demand (``tidings task run reindex``) unless ``task.schedules`` gives it a schedule."""

from __future__ import annotations

from tidings.task.biz.reindex import Reindex
from tidings.task.service.jobs import Job

REINDEX = "reindex"

# A rebuild copies every message: hours on a large deployment. A run cut short by its timeout goes on from its
# checkpoint at the next run.
REINDEX_TIMEOUT_S = 6 * 3600.0


def reindex_job(reindex: Reindex, *, schedule: str | None) -> Job:
    return Job(REINDEX, schedule=schedule, run=reindex.run, preview=reindex.preview, timeout_s=REINDEX_TIMEOUT_S)
