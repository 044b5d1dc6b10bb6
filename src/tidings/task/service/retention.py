"""The retention entries of the schedule."""

from __future__ import annotations

from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.service.jobs import Job


def refresh_token_retention(retention: RefreshTokenRetention, *, every_s: float) -> Job:
    return Job("refresh-token-retention", every_s=every_s, run=retention.run)
