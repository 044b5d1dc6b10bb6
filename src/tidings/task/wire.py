"""Composition root of the task module: the scheduler and its tasks, run by one task process at a time."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from tidings.bootstrap import Infra
from tidings.pkg import log, module
from tidings.pkg.app import Module
from tidings.pkg.bus import events
from tidings.pkg.bus.deadletter import dead_letter_topic
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.pkg.clock import wall_ms
from tidings.pkg.conf import ConfigError
from tidings.service.chat import topics as chat_topics
from tidings.task.biz.deadletters import DeadLetters
from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.biz.stats import StatsRollup
from tidings.task.data.deadletters import BusDeadLetters, SQLReplayLog
from tidings.task.data.runs import SQLRunLog
from tidings.task.data.stats import SQLActivitySource, SQLRollups
from tidings.task.data.tokens import SQLExpiredTokens
from tidings.task.server.leadership import leadership_for
from tidings.task.server.scheduler import Scheduler, TaskMetrics
from tidings.task.service.deadletters import DEAD_LETTERS, DeadLetterRequest, DeadLettersEntry, dead_letters
from tidings.task.service.jobs import Job
from tidings.task.service.retention import REFRESH_TOKEN_RETENTION, refresh_token_retention
from tidings.task.service.stats import STATS, stats

# Each task's schedule unless ``task.schedules`` names another (cron, UTC).
DEFAULT_SCHEDULES = {
    REFRESH_TOKEN_RETENTION: "17 * * * *",
    STATS: "10 * * * *",
    DEAD_LETTERS: "25 * * * *",
}

# The topics the job module's consumers read; each has its dead-letter topic, ``<topic>.dlq``.
CONSUMED_TOPICS = (*chat_topics.ALL, CACHE_INVALIDATE)

# A day's counts scan a day of the messages' creation-time index: more than a request's few seconds.
STATS_QUERY_TIMEOUT_S = 120.0


def schedules(configured: dict[str, str]) -> dict[str, str]:
    """Every task's schedule: the configured ones over the defaults; a ``ConfigError`` naming an unknown task."""
    for name in configured:
        if name not in DEFAULT_SCHEDULES:
            known = ", ".join(sorted(DEFAULT_SCHEDULES))
            raise ConfigError(f"task.schedules.{name}: unknown task (known: {known})")
    return {**DEFAULT_SCHEDULES, **configured}


async def build(
    infra: Infra, *, registry: CollectorRegistry = REGISTRY, dead_letter_request: DeadLetterRequest | None = None
) -> Scheduler:
    """The scheduler and its tasks (``tidings task`` uses it too, with what an operator asked of dead-letters)."""
    conf = infra.settings.task
    when = schedules(conf.schedules)
    engine = await infra.engine()
    retention = RefreshTokenRetention(SQLExpiredTokens(engine), wall_ms, grace_s=conf.refresh_token_grace_s)
    jobs: list[Job] = [refresh_token_retention(retention, schedule=when[REFRESH_TOKEN_RETENTION])]
    rollup = StatsRollup(
        SQLActivitySource(engine, statements=await infra.statements_engine(), timeout_s=STATS_QUERY_TIMEOUT_S),
        SQLRollups(engine),
        wall_ms,
        settle_s=conf.stats_settle_s,
        max_buckets=conf.stats_max_buckets,
    )
    jobs.append(stats(rollup, schedule=when[STATS]))
    topics = events.Topics(infra.settings.bus.namespace)
    letters = DeadLetters(
        BusDeadLetters(infra.bus),
        SQLReplayLog(engine),
        [dead_letter_topic(topics.name(topic)) for topic in CONSUMED_TOPICS],
        wall_ms,
    )
    entry = DeadLettersEntry(letters, log.get("task.dead-letters"), dead_letter_request)
    jobs.append(dead_letters(entry, schedule=when[DEAD_LETTERS]))
    return Scheduler(jobs, leadership_for(engine), SQLRunLog(engine), TaskMetrics(registry), tick_s=conf.tick_s)


async def wire(infra: Infra) -> Module:
    scheduler = await build(infra)
    return module.worker("task", infra.settings.modules.task, [infra.database_check()], [scheduler])
