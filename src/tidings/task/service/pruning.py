"""The pruning entries of the schedule: each names a table's pruning."""

from __future__ import annotations

from tidings.task.biz.pruning import Pruning
from tidings.task.service.jobs import Job

REFRESH_TOKEN_RETENTION = "refresh-token-retention"  # noqa: S105 (a task name, not a secret)
RESERVATIONS = "reservations"


def pruning_job(name: str, pruning: Pruning, *, schedule: str | None) -> Job:
    return Job(name, schedule=schedule, run=pruning.run, preview=pruning.preview)
