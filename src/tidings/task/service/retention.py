"""The message retention entry of the schedule."""

from __future__ import annotations

from tidings.task.biz.retention import MessageRetention
from tidings.task.service.jobs import Job

RETENTION = "retention"


def retention_job(retention: MessageRetention, *, schedule: str | None) -> Job:
    # A run walks a bounded number of conversations; a large backlog's deletes can take a while.
    return Job(RETENTION, schedule=schedule, run=retention.run, preview=retention.preview, timeout_s=900)
