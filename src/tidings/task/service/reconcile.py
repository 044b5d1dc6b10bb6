"""The reconcile entry of the schedule."""

from __future__ import annotations

from tidings.task.biz.reconcile import Reconcile
from tidings.task.service.jobs import Job

RECONCILE = "reconcile"


def reconcile_job(reconcile: Reconcile, *, schedule: str | None) -> Job:
    # A run walks a bounded number of conversations, each disagreement checked again after the settle time.
    return Job(RECONCILE, schedule=schedule, run=reconcile.run, preview=reconcile.preview, timeout_s=900)
