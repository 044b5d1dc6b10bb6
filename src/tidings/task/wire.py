"""Composition root of the task module: the scheduler and its tasks, run by one task process at a time."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from tidings.bootstrap import Infra
from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.pkg.clock import SystemClock
from tidings.pkg.conf import ConfigError
from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.data.leases import SQLLeases
from tidings.task.data.runs import SQLRunLog
from tidings.task.data.tokens import SQLExpiredTokens
from tidings.task.server.scheduler import Scheduler, TaskMetrics
from tidings.task.service.jobs import Job
from tidings.task.service.retention import REFRESH_TOKEN_RETENTION, refresh_token_retention

# Each task's schedule unless ``task.schedules`` names another (cron, UTC).
DEFAULT_SCHEDULES = {REFRESH_TOKEN_RETENTION: "17 * * * *"}


def schedules(configured: dict[str, str]) -> dict[str, str]:
    """Every task's schedule: the configured ones over the defaults; a ``ConfigError`` naming an unknown task."""
    for name in configured:
        if name not in DEFAULT_SCHEDULES:
            known = ", ".join(sorted(DEFAULT_SCHEDULES))
            raise ConfigError(f"task.schedules.{name}: unknown task (known: {known})")
    return {**DEFAULT_SCHEDULES, **configured}


async def build(infra: Infra, *, registry: CollectorRegistry = REGISTRY) -> Scheduler:
    """The scheduler and its tasks (``tidings task`` uses it too)."""
    conf = infra.settings.task
    when = schedules(conf.schedules)
    engine = await infra.engine()
    clock = SystemClock()
    leases = SQLLeases(engine, ttl_s=conf.lease_ttl_s, clock=clock)
    retention = RefreshTokenRetention(
        SQLExpiredTokens(engine, leases.lease(REFRESH_TOKEN_RETENTION)),
        clock.now_ms,
        grace_s=conf.refresh_token_grace_s,
        batch=conf.batch_size,
        pause_s=conf.batch_pause_s,
    )
    jobs: list[Job] = [refresh_token_retention(retention, schedule=when[REFRESH_TOKEN_RETENTION])]
    return Scheduler(
        jobs,
        leases,
        SQLRunLog(engine),
        TaskMetrics(registry),
        tick_s=conf.tick_s,
        renew_s=conf.lease_ttl_s / 3,
        clock=clock,
    )


async def wire(infra: Infra) -> Module:
    scheduler = await build(infra)
    return module.worker("task", infra.settings.modules.task, [infra.database_check()], [scheduler])
