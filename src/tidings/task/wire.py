"""Composition root of the task module: the scheduler and its jobs, run by one task process at a time."""

from __future__ import annotations

from tidings.bootstrap import Infra
from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.pkg.clock import wall_ms
from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.data.tokens import SQLExpiredTokens
from tidings.task.server.leadership import leadership_for
from tidings.task.server.scheduler import Scheduler, TaskMetrics
from tidings.task.service.retention import refresh_token_retention


async def wire(infra: Infra) -> Module:
    conf = infra.settings.task
    engine = await infra.engine()
    retention = RefreshTokenRetention(SQLExpiredTokens(engine), wall_ms, grace_s=conf.refresh_token_grace_s)
    jobs = [refresh_token_retention(retention, every_s=conf.retention_every_s)]
    scheduler = Scheduler(jobs, leadership_for(engine), TaskMetrics(), tick_s=conf.tick_s)
    return module.worker("task", infra.settings.modules.task, [infra.database_check()], [scheduler])
