"""Prometheus metrics every module shares: RED of HTTP routes and gRPC methods (served and called), the database
pool, the event loop's live tasks, and whether dependencies answer. (Caches count in ``tidings.pkg.cache.metrics``,
the bus consumer in ``tidings.pkg.bus.metrics``.)

Labels are bounded: a templated route (``/v1/conversations/{conversation_id}/messages``), a gRPC method name, a
status code and an error reason from the contracts' enums; never a user, conversation or message id. The
middleware of every module in a process records into one set per registry (``for_registry``), because a metric
name can be registered only once per registry and ``tidings dev`` runs all modules in one process.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event

# Seconds: from a cache hit to a slow fan-out under the default 10 s deadline.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """Rate, errors (by code and reason) and duration of the calls a process serves and makes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "tidings_http_server_requests",
            "HTTP requests answered, by method, templated route, status code and error reason ('' when none).",
            ["method", "route", "code", "reason"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "tidings_http_server_request_duration_seconds",
            "Time to answer an HTTP request, by method and templated route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_in_flight = Gauge(
            "tidings_http_server_requests_in_flight", "HTTP requests being answered.", registry=registry
        )
        self.grpc_requests = Counter(
            "tidings_grpc_server_requests",
            "gRPC calls served, by service, method, status code and error reason ('' when none).",
            ["service", "method", "code", "reason"],
            registry=registry,
        )
        self.grpc_duration = Histogram(
            "tidings_grpc_server_request_duration_seconds",
            "Time to serve a gRPC call (a stream: its whole life), by service and method.",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.grpc_client_requests = Counter(
            "tidings_grpc_client_requests",
            "gRPC calls made to other modules, by service, method, status code and error reason.",
            ["service", "method", "code", "reason"],
            registry=registry,
        )
        self.grpc_client_duration = Histogram(
            "tidings_grpc_client_request_duration_seconds",
            "Time a gRPC call to another module took, by service and method.",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.db_pool_in_use = Gauge(
            "tidings_db_pool_connections_in_use",
            "Database connections checked out of the pool, by backend (mysql, sqlite) and pool (transactions, or"
            " statements: the autocommit engine).",
            ["backend", "pool"],
            registry=registry,
        )
        self.db_pool_size = Gauge(
            "tidings_db_pool_size",
            "Connections the pool keeps (its overflow may add as many), by backend and pool.",
            ["backend", "pool"],
            registry=registry,
        )
        self.round_trips = Counter(
            "tidings_middleware_round_trips",
            "Requests sent to a middleware server and answered (a pipelined batch or a multi-row statement counts"
            " once), by system: mysql/sqlite statements and transaction ends (mysql_replica: the read replica's),"
            " redis commands or pipelines, kafka produce batches, fetches that returned records and offset commits.",
            ["system"],
            registry=registry,
        )
        self.replica_reads = Counter(
            "tidings_db_replica_reads",
            "Reads meant for the database's read replica (history, conversation lists, others' profiles), by where"
            " they were answered: replica, or primary (the replica failed, or failed within"
            " database.replica_retry_after_s).",
            ["served_by"],
            registry=registry,
        )
        self.replica_failures = Counter(
            "tidings_db_replica_failures",
            "Reads on the read replica that failed as unreachable or out of time; each sends the process's replica"
            " reads to the primary for database.replica_retry_after_s.",
            registry=registry,
        )
        self.asyncio_tasks = Gauge(
            "tidings_asyncio_tasks",
            "Tasks alive on the process's event loop (a number that keeps growing under a steady load is a leak).",
            registry=registry,
        )
        self.asyncio_tasks.set_function(_live_tasks)
        self.dependency_up = Gauge(
            "tidings_dependency_up",
            "1 when the dependency (database, redis) answered the last readiness probe (/readyz), else 0.",
            ["dependency"],
            registry=registry,
        )

    def http_observe(self, method: str, route: str, code: int, reason: str, duration_s: float) -> None:
        self.http_requests.labels(method, route, str(code), reason).inc()
        self.http_duration.labels(method, route).observe(duration_s)

    def grpc_observe(self, full_method: str, code: str, reason: str, duration_s: float, *, client: bool) -> None:
        service, method = split_method(full_method)
        counter, histogram = (
            (self.grpc_client_requests, self.grpc_client_duration)
            if client
            else (self.grpc_requests, self.grpc_duration)
        )
        counter.labels(service, method, code, reason).inc()
        histogram.labels(service, method).observe(duration_s)

    def track_pool(self, engine: Any, pool_name: str = "transactions") -> None:
        """Report ``engine``'s pool (an ``AsyncEngine`` or a plain one) as ``tidings_db_pool_*``."""
        sync_engine = getattr(engine, "sync_engine", engine)
        backend = sync_engine.dialect.name

        def checked_out() -> float:
            pool = sync_engine.pool
            return float(pool.checkedout()) if hasattr(pool, "checkedout") else 0.0

        def size() -> float:
            pool = sync_engine.pool
            return float(pool.size()) if hasattr(pool, "size") else 0.0

        self.db_pool_in_use.labels(backend, pool_name).set_function(checked_out)
        self.db_pool_size.labels(backend, pool_name).set_function(size)

    def count_statements(self, engine: Any, system: str | None = None) -> None:
        """Count ``engine``'s round trips: every statement, commit and rollback, and pool reset (a ROLLBACK); its
        pings are counted by the ``on_ping`` of ``db.create_engine``. ``system`` defaults to the dialect's name
        (``mysql``, ``sqlite``); a read replica's are ``mysql_replica``, so ``mysql`` stays what the primary
        answers."""
        sync_engine = getattr(engine, "sync_engine", engine)
        counter = self.round_trips.labels(system or sync_engine.dialect.name)

        def one(*_: Any, **__: Any) -> None:
            counter.inc()

        # An autocommit engine that skips the driver's rollback still fires the event: nothing is sent then.
        ends = ("commit",) if sync_engine.dialect.skip_autocommit_rollback else ("commit", "rollback")
        for name in ("before_cursor_execute", *ends):
            event.listen(sync_engine, name, one)
        event.listen(sync_engine.pool, "reset", one)

    def probed(self, dependency: str, up: bool) -> None:
        self.dependency_up.labels(dependency).set(1 if up else 0)


def _live_tasks() -> float:
    # Read during a scrape, which runs on the event loop; elsewhere (no running loop) there is nothing to count.
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:
        return 0.0


def split_method(full_method: str) -> tuple[str, str]:
    """``/tidings.chat.v1.Chat/SendMessage`` -> (``tidings.chat.v1.Chat``, ``SendMessage``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


# Keyed by id, holding the registry too so that its id cannot be reused by another one.
_SETS: dict[int, tuple[CollectorRegistry, RequestMetrics]] = {}
_LOCK = threading.Lock()


def for_registry(registry: CollectorRegistry = REGISTRY) -> RequestMetrics:
    """The one ``RequestMetrics`` of ``registry`` (created on first use)."""
    with _LOCK:
        known = _SETS.get(id(registry))
        if known is None:
            known = _SETS[id(registry)] = (registry, RequestMetrics(registry))
        return known[1]
