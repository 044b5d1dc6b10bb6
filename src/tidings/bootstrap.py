"""The one place where adapters are chosen (cosmicpython's ``bootstrap``): embedded or the real middleware, by
configuration. ``Infra`` opens each connection once per process, shares it between the modules the process runs
and closes it when the process stops.

``tidings dev`` runs every module in one process: they share one engine (one SQLite writer) and one in-process
route table instead of each opening its own. A module asks for what it needs; nothing is opened that no module
asked for.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings import migrations
from tidings.conf import Settings
from tidings.pkg import db, log, metrics, trace
from tidings.pkg.app import Server
from tidings.pkg.bus import EventBus, events
from tidings.pkg.bus.factory import create_bus
from tidings.pkg.cache.breaker import Breaker
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE, BusInvalidator, Invalidator, LocalInvalidator
from tidings.pkg.cache.kit import CacheKit, policy_of
from tidings.pkg.cache.memory import MemoryStore
from tidings.pkg.cache.metrics import CacheMetrics
from tidings.pkg.cache.ports import CacheStore
from tidings.pkg.cache.redis_store import RedisStore
from tidings.pkg.conf import SearchConf
from tidings.pkg.health import Check
from tidings.pkg.idgen import IdGenerator, SQLWorkerLease
from tidings.pkg.middleware.grpc import client_interceptors
from tidings.pkg.ratelimit import MemoryRateLimiter, RateLimiter
from tidings.pkg.ratelimit.redis import RedisRateLimiter
from tidings.pkg.rediscluster import cluster_client
from tidings.pkg.transport.grpc import dial
from tidings.realtime.model import RouteTable
from tidings.realtime.routes import MemoryRouteTable, RedisRouteTable
from tidings.search.fts5 import FTS5Index
from tidings.search.model import SearchIndex, SearchUnavailable
from tidings.search.opensearch import OpenSearchIndex

T = TypeVar("T")

# The read replica's round trips (tidings_middleware_round_trips): apart from ``mysql``, which the primary answers.
REPLICA_SYSTEM = "mysql_replica"


class CountedConnection(redis.Connection):
    """A Redis connection that counts what it sends: one command, or one whole pipeline, is one round trip.

    redis-py has no hook for this; counting where the bytes leave keeps pipelines and scripts honest (one each).
    """

    def __init__(self, *, round_trips: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._round_trips = round_trips

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._round_trips.inc()
        await super().send_packed_command(command, check_health)


class Infra:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | None = None
        self._statements_engine: AsyncEngine | None = None
        self._replica: db.ReadReplica | None = None
        self._migrated = False
        self._idgen: IdGenerator | None = None
        self._bus: EventBus | None = None
        self._redis: redis.Redis | None = None
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._route_table: RouteTable | None = None
        self._search: SearchIndex | None = None

    async def engine(self) -> AsyncEngine:
        """The database engine, reachable and (if configured) migrated, or ``DatabaseUnavailable``."""
        if self._engine is None:
            conf = self.settings.database
            engine = db.create_engine(conf, on_ping=_pings(conf.url))
            try:
                await db.ping(engine, conf.connect_timeout_s)
                if conf.auto_migrate:
                    await migrations.upgrade(conf.url)
            except BaseException:
                await engine.dispose()
                raise
            _observe_engine(engine, "transactions")
            self._engine = engine
        return self._engine

    async def statements_engine(self) -> AsyncEngine:
        """The engine whose statements commit by themselves (``db.create_engine(autocommit=True)``): for reads and
        one-statement writes, one round trip each. On SQLite, the one engine (one writer, no round trips)."""
        engine = await self.engine()  # reachable and migrated first
        conf = self.settings.database
        if db.backend(conf.url) == "sqlite":
            return engine
        if self._statements_engine is None:
            self._statements_engine = db.create_engine(conf, autocommit=True, on_ping=_pings(conf.url))
            _observe_engine(self._statements_engine, "statements")
        return self._statements_engine

    async def replica(self) -> db.ReadReplica | None:
        """The read replica of ``database.replica_url`` (None without one), for reads that may be a little behind
        (docs/DATA.md). Not pinged at start and not part of readiness: while it does not answer, its reads go to
        the primary (``db.ReadReplica``)."""
        conf = self.settings.database
        if not conf.replica_url:
            return None
        await self.engine()  # the primary reachable and migrated first; the replica gets the schema by replication
        if self._replica is None:
            registry = metrics.for_registry()
            engine = db.create_replica_engine(conf, on_ping=registry.round_trips.labels(REPLICA_SYSTEM).inc)
            trace.instrument_engine(engine)
            registry.track_pool(engine, "replica")
            registry.count_statements(engine, REPLICA_SYSTEM)
            self._replica = db.ReadReplica(
                engine,
                retry_after_s=conf.replica_retry_after_s,
                on_read=lambda by: registry.replica_reads.labels(by).inc(),
                on_failure=registry.replica_failures.inc,
                logger=log.get("db.replica"),
            )
        return self._replica

    def database_check(self) -> Check:
        async def ping() -> None:
            await db.ping(await self.engine(), self.settings.database.connect_timeout_s)

        async def probe() -> None:
            await _observed("database", ping())

        return Check("database", probe)

    async def idgen(self) -> IdGenerator:
        """The process's one snowflake generator; its worker id lease runs with the app (see ``resources``)."""
        if self._idgen is None:
            conf = self.settings.idgen
            owner = f"{socket.gethostname()}:{os.getpid()}"
            lease = SQLWorkerLease(await self.engine(), owner, conf.lease_ttl_s)
            self._idgen = IdGenerator(lease, fixed_worker_id=conf.worker_id, renew_every_s=conf.lease_ttl_s / 3)
        return self._idgen

    async def bus(self) -> EventBus:
        """The event bus (embedded log or Kafka), started: publishing works once this returns."""
        if self._bus is None:
            bus = create_bus(self.settings.bus, client_id=self.settings.app.name)
            await bus.start()
            self._bus = bus
        return self._bus

    @property
    def uses_redis(self) -> bool:
        """Whether the cache is Redis (``redis://``) rather than in-process (``memory://``)."""
        return self.settings.cache.url.startswith(("redis://", "rediss://", "unix://"))

    def redis(self) -> redis.Redis:
        """The Redis client of ``cache.url``; connections open lazily, each command bounded by the timeout. With
        ``cache.cluster``, a Redis Cluster client (``tidings.pkg.rediscluster``), whose round trips are not counted:
        redis-py's cluster client builds its connections itself."""
        if not self.uses_redis:
            raise RuntimeError(f"cache.url {self.settings.cache.url!r} is not a Redis URL")
        if self._redis is None:
            timeout = self.settings.cache.timeout_s
            if self.settings.cache.cluster:
                self._redis = cluster_client(
                    self.settings.cache.url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            else:
                self._redis = redis.Redis.from_url(
                    self.settings.cache.url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    connection_class=CountedConnection,
                    round_trips=metrics.for_registry().round_trips.labels("redis"),
                )
            trace.instrument_redis(self._redis)
        return self._redis

    async def on_redis(self, build: Callable[[Redis], Awaitable[T]], embedded: T) -> T:
        """What ``build`` makes of the Redis client when ``cache.url`` is Redis, else ``embedded``: the embedded
        mode's stand-in for something only shared Redis state needs (a null object, or nothing to run)."""
        if not self.uses_redis:
            return embedded
        return await build(self.redis())

    def rate_limiter(self, prefix: str) -> RateLimiter:
        """GCRA limits that every instance shares through Redis, or this process's own in the embedded mode."""
        if self.uses_redis:
            return RedisRateLimiter(self.redis(), prefix=prefix)
        return MemoryRateLimiter()

    def redis_checks(self) -> list[Check]:
        """Redis's readiness check where Redis is configured; none in the embedded mode."""
        return [self.redis_check()] if self.uses_redis else []

    def redis_check(self) -> Check:
        async def probe() -> None:
            await _observed("redis", self.redis().ping())

        return Check("redis", probe)

    async def cache_kit(
        self, registry: CollectorRegistry, module: str, *, topics: events.Topics | None = None
    ) -> CacheKit:
        """Redis and ``cache.invalidate`` on the bus for ``redis://``; an in-process store and a timer otherwise."""
        conf = self.settings.cache
        store: CacheStore
        invalidator: Invalidator
        if self.uses_redis:
            store = RedisStore(self.redis(), batch_size=conf.batch_size, timeout_s=conf.timeout_s)
            topics = topics or events.Topics(self.settings.bus.namespace)
            bus = await self.bus()
            await bus.ensure_topics(topics.specs([CACHE_INVALIDATE]))
            invalidator = BusInvalidator(bus, topics, origin=module, delay_s=conf.invalidate_delay_s)
        else:
            store = MemoryStore(conf.memory_max_entries)
            invalidator = LocalInvalidator(store, delay_s=conf.invalidate_delay_s)
        metrics = CacheMetrics(registry, module)
        return CacheKit(store, invalidator, metrics, policy_of(conf), breaker=Breaker(conf.retry_after_s))

    def route_table(self) -> RouteTable:
        """The route table: Redis when ``cache.url`` is Redis, else one in-process table shared by the modules of
        this process (in ``tidings dev`` the push job must see the routes the bff writes)."""
        if self._route_table is None:
            conf = self.settings.realtime
            self._route_table = (
                RedisRouteTable(self.redis(), ttl_s=conf.route_ttl_s, prefix=conf.route_prefix)
                if self.uses_redis
                else MemoryRouteTable(ttl_s=conf.route_ttl_s)
            )
        return self._route_table

    async def search(self) -> SearchIndex:
        """The process's one search index (OpenSearch, or SQLite FTS5 embedded). With ``database.auto_migrate``
        its indices or tables are made ready first; if the index is down meanwhile the process starts anyway (sends
        do not need it) and searches answer SEARCH_UNAVAILABLE until it is back."""
        if self._search is None:
            index = search_index(self.settings.search)
            if self.settings.database.auto_migrate:
                try:
                    await index.ensure()
                except SearchUnavailable as exc:
                    log.get("bootstrap").warning("search index not ready", error=str(exc))
            self._search = index
        return self._search

    def channel(self, module: str, *, keyed: bool = False) -> grpc.aio.Channel:
        """One shared gRPC channel to ``module`` (``account``, ``chat``, ``bff``): errors come back as
        ``TidingsError`` and every call carries the time its caller has left. Calls go round-robin over the
        module's instances; on a ``keyed`` channel, those with the same shard key to one instance
        (``tidings.pkg.transport.grpc.dial``). The first call for a module decides."""
        if module not in self._channels:
            conf = getattr(self.settings.modules, module)
            target = conf.dial or (conf.grpc.address if conf.grpc is not None else None)
            if target is None:
                raise RuntimeError(f"modules.{module} has no gRPC address to dial")
            self._channels[module] = dial(target, client_interceptors(), keyed=keyed)
        return self._channels[module]

    def resources(self) -> list[Server]:
        """What must run before any server takes a call and stop after the last one drained."""
        return [self._idgen] if self._idgen is not None else []

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        if self._search is not None:
            await self._search.close()
            self._search = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._replica is not None:
            await self._replica.engine.dispose()
            self._replica = None
        if self._statements_engine is not None:
            await self._statements_engine.dispose()
            self._statements_engine = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def search_index(conf: SearchConf) -> SearchIndex:
    """The search adapter ``search.kind`` names (not yet made ready: ``ensure``)."""
    if conf.kind == "opensearch":
        return OpenSearchIndex(
            conf.url,
            namespace=conf.namespace,
            timeout_s=conf.timeout_s,
            replicas=conf.replicas,
            task_timeout_s=conf.task_timeout_s,
            alias_cache_s=conf.alias_cache_s,
        )
    return FTS5Index(conf.url, namespace=conf.namespace, timeout_s=conf.timeout_s)


def _pings(url: str) -> Callable[[], None]:
    """Counts an engine's idle-connection pings as round trips to its database."""
    return metrics.for_registry().round_trips.labels(db.backend(url)).inc


def _observe_engine(engine: AsyncEngine, pool: str) -> None:
    """Statement spans, pool gauges (tidings_db_pool_*) and round-trip counts for one of the process's engines."""
    trace.instrument_engine(engine)
    metrics.for_registry().track_pool(engine, pool)
    metrics.for_registry().count_statements(engine)


async def _observed(dependency: str, probe: Awaitable[object]) -> None:
    """Await a readiness probe and report its outcome as ``tidings_dependency_up``."""
    try:
        await probe
    except BaseException:
        metrics.for_registry().probed(dependency, False)
        raise
    metrics.for_registry().probed(dependency, True)
