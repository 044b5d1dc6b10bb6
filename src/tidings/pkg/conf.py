"""The framework's sections of the typed configuration (listeners, logs, traces, database, cache, bus, ids); the
modules' own sections and the whole ``Settings`` are ``tidings.conf``'s.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(Section):
    """A ``host:port`` pair a server binds to."""

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class ModuleConf(Section):
    """Where one module listens: ``http`` serves health and metrics (and the API for bff/admin)."""

    http: Listen
    grpc: Listen | None = None
    # Where other modules reach this one's gRPC server: a gRPC target, ``host:port`` (every address the name
    # resolves to: a headless Service in Kubernetes), ``dns:///name:port``, or ``ipv4:host1:port1,host2:port2`` for
    # instances at fixed addresses. Calls are spread round-robin over the instances (tidings.pkg.transport.grpc.dial).
    # Defaults to the ``grpc`` listen address, which suits one machine.
    dial: str | None = None
    # The deadline of a request that brings none (every HTTP request; a gRPC call without one), passed on as the
    # timeout of the calls it makes.
    request_timeout_s: float = Field(default=10.0, gt=0)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str:
    """A browser origin as browsers send it (``scheme://host[:port]``, lowercase), or a ``ValueError`` saying why
    ``value`` is none."""
    if value == "*":
        raise ValueError("list each origin; '*' is not allowed")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an origin: http(s)://host[:port]")
    if parts.path or parts.query or parts.fragment or parts.username is not None or parts.password is not None:
        raise ValueError("must be an origin alone (scheme://host[:port]): no path, query or user")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("must be an origin: its port is not a number from 0 to 65535") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    # A browser leaves the scheme's own port out of the origin it sends.
    shown = "" if port is None or _DEFAULT_PORTS[parts.scheme] == port else f":{port}"
    return f"{parts.scheme}://{host}{shown}"


Origin = Annotated[str, AfterValidator(_origin)]


def _network(value: str) -> str:
    """An address or a network (``10.0.0.0/8``) in its canonical spelling, or a ``ValueError`` saying why not."""
    return str(ipaddress.ip_network(value, strict=False))


Network = Annotated[str, AfterValidator(_network)]


class ApiConf(ModuleConf):
    """A module that serves an API over HTTP to people or programs (the bff, the back office)."""

    # The generated API pages (``/docs``, ``/redoc``) load their scripts from a CDN, which must not run on an origin
    # of ours; off unless a developer wants them. ``/openapi.json`` is always served.
    docs: bool = False
    # Pages on these origins (``https://host[:port]``) may call the API from a browser (CORS), sending their bearer
    # token, never cookies. None by default: only pages the API serves itself can.
    cors_origins: list[Origin] = Field(default_factory=list)
    # The proxies in front of this API (addresses or networks) whose ``X-Forwarded-For`` and ``X-Forwarded-Proto``
    # are believed: the client address (per-address limits, logs) is then the one they forward. None by default:
    # the client address is the connection's peer, and a forwarded header from anyone else changes nothing.
    trusted_proxies: list[Network] = Field(default_factory=list)


class LogConf(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # ``ecs`` is one JSON object a line for ELK; ``console`` is for people reading a terminal.
    format: Literal["ecs", "console"] = "ecs"


class TraceConf(Section):
    """Where spans go and how many traces are kept."""

    # none: spans exist (trace ids in logs and error bodies) but go nowhere; console: JSON lines on stderr;
    # file: JSON lines appended to ``path`` (``tidings dev``, tests across processes); otlp: a collector, Jaeger
    # or Tempo at ``endpoint`` over ``protocol``; zipkin: a Zipkin v2 JSON endpoint.
    exporter: Literal["none", "console", "file", "otlp", "zipkin"] = "none"
    path: str = ".data/traces.jsonl"
    # otlp grpc: http://host:4317; otlp http: http://host:4318/v1/traces; zipkin: http://host:9411/api/v2/spans.
    endpoint: str | None = None
    protocol: Literal["grpc", "http"] = "grpc"
    insecure: bool = True
    # Share of new traces kept (0..1); a call that arrives traced keeps its caller's decision (parent based).
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    # At most this many new traces a second per process, whatever the ratio (0: no cap): a person clicking
    # around has every request traced, while a load cannot make exporting spans the process's main work.
    max_traces_per_s: float = Field(default=0.0, ge=0)


class DatabaseConf(Section):
    # ``sqlite+aiosqlite:///path`` (embedded) or ``mysql+aiomysql://user:pass@host:port/db``.
    url: str = "sqlite+aiosqlite:///.data/tidings.db"
    pool_size: int = Field(default=10, ge=1, le=500)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # A pooled connection idle this long is pinged before use, so one that died with a restarted server is replaced
    # instead of failing a request; busy connections are not pinged (0: ping on every checkout).
    ping_idle_s: float = Field(default=1.0, ge=0)
    # Apply pending migrations at start (embedded and local stack); production runs ``tidings migrate``.
    auto_migrate: bool = True
    echo: bool = False
    # A read replica of ``url`` (MySQL/MariaDB, same database; empty: none). Reads that may be a little behind
    # (history, conversation lists, others' profiles) go there; every other read and every write stays on ``url``
    # (docs/DATA.md). Never migrated: replication brings the schema.
    replica_url: str = ""
    # After the replica fails to answer, its reads go to ``url`` for this long before it is tried again.
    replica_retry_after_s: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _replica_url(self) -> DatabaseConf:
        if self.replica_url:
            dialects = {urlsplit(u).scheme.split("+")[0] for u in (self.url, self.replica_url)}
            if not dialects <= {"mysql", "mariadb"}:
                raise ValueError("database.replica_url needs mysql urls for both database.url and the replica")
        return self


class CacheConf(Section):
    # ``memory://`` (in-process) or ``redis://host:port/db``.
    url: str = "memory://"
    # ``url`` names one node of a Redis Cluster (``redis://host:port``, database 0): the client learns the others
    # from it and sends each key to its slot's master (tidings.pkg.rediscluster; key layouts in docs/CACHE.md).
    cluster: bool = False
    timeout_s: float = Field(default=1.0, gt=0)
    # Cache-aside (tidings.pkg.cache, docs/CACHE.md): how long values and "no such row" live, spread by +-jitter.
    ttl_s: float = Field(default=300.0, gt=0)
    null_ttl_s: float = Field(default=30.0, gt=0)
    jitter: float = Field(default=0.1, ge=0, lt=1)
    # The second delete of a write's keys runs this long after the commit (above the replica lag); a load that
    # takes longer than half of it is not stored. A reader may see a value this old after a write (docs/CACHE.md).
    invalidate_delay_s: float = Field(default=1.0, gt=0)
    # Keys per Redis round trip (MGET, pipelines), and the size bound of the in-process store.
    batch_size: int = Field(default=256, ge=1, le=10_000)
    memory_max_entries: int = Field(default=100_000, ge=1)
    # After a Redis error, requests skip the cache for this long and read the database.
    retry_after_s: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _cluster_url(self) -> CacheConf:
        if self.cluster:
            parts = urlsplit(self.url)
            if parts.scheme not in ("redis", "rediss") or parts.path.strip("/") not in ("", "0"):
                raise ValueError("cache.cluster needs a redis:// or rediss:// url of one node, database 0")
        return self


class BusConf(Section):
    kind: Literal["embedded", "kafka"] = "embedded"
    # embedded: the SQLite file of the durable log; kafka: ignored.
    path: str = ".data/events.db"
    bootstrap_servers: str = "127.0.0.1:9092"
    timeout_s: float = Field(default=10.0, gt=0)
    # Put before every topic and consumer group name: empty in deployments; systems sharing one broker (test
    # fleets, benchmarks) each take their own, so one's consumers never take another's records.
    namespace: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")
    # kafka: how many brokers hold a copy of each topic the bus creates (1 on one broker, 3 on a cluster), and how
    # many of them must have a record before a publish is acknowledged (the topic's ``min.insync.replicas``; none:
    # the brokers' default). Topics that already exist keep theirs.
    replication_factor: int = Field(default=1, ge=1, le=32)
    min_insync_replicas: int | None = Field(default=None, ge=1, le=32)

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> BusConf:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"bus.min_insync_replicas ({self.min_insync_replicas}) cannot exceed bus.replication_factor"
                f" ({self.replication_factor}): no publish could ever be acknowledged"
            )
        return self


class SearchConf(Section):
    kind: Literal["fts5", "opensearch"] = "fts5"
    # fts5: the SQLite file of the index; opensearch: the node URL.
    url: str = ".data/search.db"
    timeout_s: float = Field(default=5.0, gt=0)
    # Put before every index, alias and template name (fts5: every table): empty in deployments; systems sharing
    # one cluster (test fleets, benchmarks) each take their own. Lowercase, as OpenSearch's index names are.
    namespace: str = Field(default="", max_length=64, pattern=r"^[a-z0-9._-]*$")
    # opensearch: replicas of each index (0 on a one-node cluster).
    replicas: int = Field(default=1, ge=0, le=5)
    # opensearch: how long an update or delete by query (a rename, retention) may run in the background before it
    # is reported failed and run again.
    task_timeout_s: float = Field(default=300.0, gt=0)
    # opensearch: how long a process keeps which indices its writes go to (those behind a write alias) before it
    # reads them again. A reindex waits this long (plus twice timeout_s) after adding the index it rebuilds before it
    # copies, so the same value belongs on every process.
    alias_cache_s: float = Field(default=2.0, ge=0, le=60)


class IdGenConf(Section):
    # A fixed worker id, or ``None`` to lease one from the database.
    worker_id: int | None = Field(default=None, ge=0, le=1023)
    lease_ttl_s: float = Field(default=30.0, gt=1)


class AppConf(Section):
    name: str = "tidings"
    env: str = "dev"
    # How long a stopping process may drain in-flight work before it is cut off.
    stop_timeout_s: float = Field(default=10.0, gt=0)
