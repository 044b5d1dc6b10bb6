"""Composition root of the task module: the scheduler and its jobs, run by one task process at a time."""

from __future__ import annotations

import time

from tidings.bootstrap import Infra
from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.service.account.data.repos import SQLRefreshTokenRepo
from tidings.task.leadership import leadership_for
from tidings.task.retention import refresh_token_retention
from tidings.task.scheduler import Scheduler, TaskMetrics


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def wire(infra: Infra) -> Module:
    conf = infra.settings.task
    engine = await infra.engine()
    jobs = [
        refresh_token_retention(
            SQLRefreshTokenRepo(engine), _now_ms, grace_s=conf.refresh_token_grace_s, every_s=conf.retention_every_s
        ),
    ]
    scheduler = Scheduler(jobs, leadership_for(engine), TaskMetrics(), tick_s=conf.tick_s)
    return module.worker("task", infra.settings.modules.task, [infra.database_check()], [scheduler])
