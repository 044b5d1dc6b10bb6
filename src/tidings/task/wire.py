"""Composition root of the task module: the scheduler and its tasks, run by one task process at a time."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry
from redis.asyncio import Redis

from tidings.bootstrap import Infra
from tidings.pkg import log, module
from tidings.pkg.app import Module
from tidings.pkg.bus import events
from tidings.pkg.bus.deadletter import dead_letter_topic
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.pkg.clock import SystemClock
from tidings.pkg.conf import ConfigError
from tidings.service.account import topics as account_topics
from tidings.service.account.store.tokens import count_expired_tokens, prune_expired_tokens
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.store.history import RedisHistoryCache
from tidings.service.chat.store.reservations import count_prunable_reservations, prune_reservations
from tidings.task.biz.deadletters import DeadLetters
from tidings.task.biz.pruning import Pruning
from tidings.task.biz.reconcile import CachedStates, Reconcile
from tidings.task.biz.reindex import Reindex
from tidings.task.biz.retention import MessageRetention, RecentWindows
from tidings.task.biz.stats import StatsRollup
from tidings.task.data.deadletters import BusDeadLetters, SQLReplayLog
from tidings.task.data.leases import SQLLeases
from tidings.task.data.pruning import Count, Prune, SQLAgedRows
from tidings.task.data.reconcile import CachedChatStates, NoCachedStates, ReconcileMetrics, SQLConversations
from tidings.task.data.reindex import SQLIndexSource
from tidings.task.data.retention import NoWindows, SQLHistory
from tidings.task.data.runs import SQLRunLog
from tidings.task.data.stats import SQLActivitySource, SQLRollups
from tidings.task.server.scheduler import Scheduler, TaskMetrics
from tidings.task.service.deadletters import DEAD_LETTERS, DeadLetterRequest, DeadLettersEntry, dead_letters
from tidings.task.service.jobs import Job
from tidings.task.service.pruning import REFRESH_TOKEN_RETENTION, RESERVATIONS, pruning_job
from tidings.task.service.reconcile import RECONCILE, reconcile_job
from tidings.task.service.reindex import REINDEX, reindex_job
from tidings.task.service.retention import RETENTION, retention_job
from tidings.task.service.stats import STATS, stats

# Each task's schedule unless ``task.schedules`` names another (cron, UTC); ``None``: on demand only (``tidings task
# run``), unless ``task.schedules`` gives it one.
DEFAULT_SCHEDULES: dict[str, str | None] = {
    REFRESH_TOKEN_RETENTION: "17 * * * *",
    STATS: "10 * * * *",
    RESERVATIONS: "23 * * * *",
    RETENTION: "47 3 * * *",
    DEAD_LETTERS: "25 * * * *",
    RECONCILE: "41 * * * *",
    REINDEX: None,
}

# The topics the job module's consumers read; each has its dead-letter topic, ``<topic>.dlq``.
CONSUMED_TOPICS = (*chat_topics.ALL, *account_topics.ALL, CACHE_INVALIDATE)

# A day's counts scan a day of the messages' creation-time index: more than a request's few seconds.
STATS_QUERY_TIMEOUT_S = 120.0


def schedules(configured: dict[str, str]) -> dict[str, str | None]:
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
    clock = SystemClock()
    leases = SQLLeases(engine, ttl_s=conf.lease_ttl_s, clock=clock)

    def pruning(name: str, prune: Prune, count: Count, keep_s: float) -> Job:
        rows = SQLAgedRows(engine, leases.lease(name), prune=prune, count=count)
        batches = Pruning(rows, clock.now_ms, keep_s=keep_s, batch=conf.batch_size, pause_s=conf.batch_pause_s)
        return pruning_job(name, batches, schedule=when[name])

    jobs = [
        pruning(REFRESH_TOKEN_RETENTION, prune_expired_tokens, count_expired_tokens, conf.refresh_token_grace_s),
        pruning(RESERVATIONS, prune_reservations, count_prunable_reservations, conf.reservation_retry_window_s),
    ]

    rollup = StatsRollup(
        SQLActivitySource(engine, statements=await infra.statements_engine(), timeout_s=STATS_QUERY_TIMEOUT_S),
        SQLRollups(engine, leases.lease(STATS)),
        clock.now_ms,
        settle_s=conf.stats_settle_s,
        max_buckets=conf.stats_max_buckets,
    )
    jobs.append(stats(rollup, schedule=when[STATS]))

    topics = events.Topics(infra.settings.bus.namespace)
    letters = DeadLetters(
        BusDeadLetters(infra.bus),
        SQLReplayLog(engine, leases.lease(DEAD_LETTERS)),
        [dead_letter_topic(topics.name(topic)) for topic in CONSUMED_TOPICS],
        clock.now_ms,
    )
    entry = DeadLettersEntry(letters, log.get("task.dead-letters"), dead_letter_request)
    jobs.append(dead_letters(entry, schedule=when[DEAD_LETTERS]))

    async def cached_states(client: Redis) -> CachedStates:
        kit = await infra.cache_kit(registry, "task")
        return CachedChatStates(kit, RedisHistoryCache(client), ReconcileMetrics(registry))

    reconcile = Reconcile(
        SQLConversations(engine),
        await infra.on_redis(cached_states, NoCachedStates()),
        leases.lease(RECONCILE),
        log.get("task.reconcile"),
        batch=conf.reconcile_batch,
        settle_s=infra.settings.cache.invalidate_delay_s + 1,
    )
    jobs.append(reconcile_job(reconcile, schedule=when[RECONCILE]))

    search = await infra.search()

    async def windows(client: Redis) -> RecentWindows:
        return RedisHistoryCache(client)

    keep_s = {"direct": conf.message_retention_direct_days, "group": conf.message_retention_group_days}
    retention = MessageRetention(
        SQLHistory(engine, leases.lease(RETENTION)),
        search,
        await infra.on_redis(windows, NoWindows()),
        leases.lease(RETENTION),
        clock.now_ms,
        keep_s={kind: days * 86_400 for kind, days in keep_s.items() if days is not None},
        batch=conf.batch_size,
        pause_s=conf.batch_pause_s,
    )
    jobs.append(retention_job(retention, schedule=when[RETENTION]))

    reindex = Reindex(
        SQLIndexSource(engine, statements=await infra.statements_engine()),
        search,
        search,
        leases.lease(REINDEX),
        clock.now_ms,
        log.get("task.reindex"),
        batch=conf.batch_size,
        pause_s=conf.batch_pause_s,
        margin_s=conf.reindex_margin_s,
    )
    jobs.append(reindex_job(reindex, schedule=when[REINDEX]))
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
