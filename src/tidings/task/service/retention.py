"""The retention entries of the schedule."""

from __future__ import annotations

from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.service.jobs import Job

REFRESH_TOKEN_RETENTION = "refresh-token-retention"  # noqa: S105 (a task name, not a secret)


def refresh_token_retention(retention: RefreshTokenRetention, *, schedule: str) -> Job:
    return Job(REFRESH_TOKEN_RETENTION, schedule=schedule, run=retention.run, preview=retention.preview)
