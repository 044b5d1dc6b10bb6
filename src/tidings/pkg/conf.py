"""Typed configuration: a YAML file, overridden by ``TIDINGS_`` environment variables, validated at start.

Nested keys are separated by ``__`` in the environment: ``TIDINGS_DATABASE__URL`` overrides ``database.url``.
Unknown keys and wrong types are errors, reported as one line that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Section):
    """A ``host:port`` pair a server binds to."""

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class ModuleConf(_Section):
    """Where one module listens: ``http`` serves health and metrics (and the API for bff/admin)."""

    http: Listen
    grpc: Listen | None = None
    # Where other modules reach this one's gRPC server (``host:port``; a DNS name behind a load balancer in
    # production). Defaults to the ``grpc`` listen address, which suits one machine.
    dial: str | None = None
    # The deadline of a request that brings none (every HTTP request; a gRPC call without one), passed on as the
    # timeout of the calls it makes.
    request_timeout_s: float = Field(default=10.0, gt=0)


class BffConf(ModuleConf):
    """The bff's listeners. ``http`` and ``grpc`` are public (clients reach them); ``internal_grpc`` serves only
    other Tidings processes (``Deliver`` from the push job and from other bff instances, with
    ``auth.internal_secret``), and ``metrics`` serves ``/metrics`` (with ``/healthz`` and ``/readyz``), so neither
    is reachable where clients are. Each has a default, so one overridden port leaves the others in place."""

    grpc: Listen | None = Listen(port=9080)
    internal_grpc: Listen = Listen(port=9180)
    metrics: Listen = Listen(port=8086)
    # gRPC reflection on the public port: lists the services to anyone, so off unless a developer wants it.
    reflection: bool = False
    # The generated API pages (``/docs``, ``/redoc``) load their scripts from a CDN, which must not run on the
    # chat client's origin; off unless a developer wants them. ``/openapi.json`` is always served.
    docs: bool = False
    # Slow clients on the public HTTP port: a request's headers must arrive within ``header_timeout_s`` of its
    # first byte (or of the connection, for the first request), its body within ``body_timeout_s`` after them; an
    # idle keep-alive connection is closed after ``keep_alive_s``.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keep_alive_s: int = Field(default=5, ge=1)
    # Connections (HTTP and WebSocket) one client address may hold at once; 0 for no cap (behind a proxy every
    # client has the proxy's address: cap at the proxy instead).
    max_connections_per_client: int = Field(default=256, ge=0)


class Modules(_Section):
    bff: BffConf = BffConf(http=Listen(port=8080))
    account: ModuleConf = ModuleConf(http=Listen(port=8081), grpc=Listen(port=9081))
    chat: ModuleConf = ModuleConf(http=Listen(port=8082), grpc=Listen(port=9082))
    job: ModuleConf = ModuleConf(http=Listen(port=8083))
    task: ModuleConf = ModuleConf(http=Listen(port=8084))
    admin: ModuleConf = ModuleConf(http=Listen(port=8085))


class LogConf(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # ``ecs`` is one JSON object a line for ELK; ``console`` is for people reading a terminal.
    format: Literal["ecs", "console"] = "ecs"


class TraceConf(_Section):
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


class DatabaseConf(_Section):
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


class CacheConf(_Section):
    # ``memory://`` (in-process) or ``redis://host:port/db``.
    url: str = "memory://"
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


class BusConf(_Section):
    kind: Literal["embedded", "kafka"] = "embedded"
    # embedded: the SQLite file of the durable log; kafka: ignored.
    path: str = ".data/events.db"
    bootstrap_servers: str = "127.0.0.1:9092"
    timeout_s: float = Field(default=10.0, gt=0)
    # Put before every topic and consumer group name: empty in deployments; systems sharing one broker (test
    # fleets, benchmarks) each take their own, so one's consumers never take another's records.
    namespace: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")


class SearchConf(_Section):
    kind: Literal["fts5", "opensearch"] = "fts5"
    # fts5: the SQLite file of the index; opensearch: the node URL.
    url: str = ".data/search.db"
    timeout_s: float = Field(default=5.0, gt=0)


class IdGenConf(_Section):
    # A fixed worker id, or ``None`` to lease one from the database.
    worker_id: int | None = Field(default=None, ge=0, le=1023)
    lease_ttl_s: float = Field(default=30.0, gt=1)


class AuthConf(_Section):
    # Signs access tokens; at least 32 characters. Set it from the environment (TIDINGS_AUTH__JWT_SECRET)
    # anywhere but on a developer's machine. The account service refuses to start without it.
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)
    access_ttl_s: int = Field(default=900, ge=30, le=86_400)
    # Proves a call on the bff's internal gRPC listener comes from another Tidings process (the push job, another
    # bff); at least 32 characters, the same on every bff and job process. Set it from the environment
    # (TIDINGS_AUTH__INTERNAL_SECRET) anywhere but on a developer's machine. The bff and the job refuse to start
    # without it.
    internal_secret: SecretStr | None = Field(default=None, min_length=32)

    def require_internal_secret(self) -> str:
        """``internal_secret``, or a ``ConfigError`` naming the key for a process that cannot run without it."""
        if self.internal_secret is None:
            raise ConfigError("auth.internal_secret must be set (TIDINGS_AUTH__INTERNAL_SECRET, 32+ characters)")
        return self.internal_secret.get_secret_value()

    refresh_ttl_s: int = Field(default=30 * 86_400, ge=60)
    # argon2id's cost for new password hashes (existing hashes carry their own and still verify): the library's
    # defaults, 3 passes over 64 MiB. Lower only where hashing time matters more than resisting guessing.
    password_time_cost: int = Field(default=3, ge=1, le=20)
    password_memory_kib: int = Field(default=64 * 1024, ge=8 * 1024, le=1024 * 1024)


class RealtimeConf(_Section):
    """The bff's live connections (WebSocket and gRPC stream) and the route table the push job reads."""

    # The address of this very instance's gRPC server, which the push job dials for ``Deliver``. Set it per
    # instance (TIDINGS_REALTIME__ADVERTISE) when ``modules.bff.dial`` is a load balancer or the listen host is
    # 0.0.0.0; unset, it is ``modules.bff.dial``, else the bff's gRPC listen address.
    advertise: str | None = None
    # Frames waiting for one slow connection; when full, the connection is closed (4008) and catches up by sync.
    queue_size: int = Field(default=256, ge=1, le=65_536)
    # Largest client frame accepted; a larger one is answered with an error frame.
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=4 * 1024 * 1024)
    # A connection that sends nothing for this long is closed (4408). Clients ping every ``idle_timeout_s / 2.5``
    # (30 s with the default).
    idle_timeout_s: float = Field(default=75.0, gt=0)
    # A route (user -> session -> instance) lives this long unless refreshed; refreshed every third of it.
    route_ttl_s: float = Field(default=90.0, ge=3)
    # The route table's Redis key prefix: deployments (or test fleets) sharing one Redis keep apart by it.
    route_prefix: str = Field(default="rt", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    # Tokens are checked again this often (revocation); an expired token closes the connection at its expiry.
    reverify_interval_s: float = Field(default=60.0, gt=0)
    # Typing frames per user (all their connections together): a token bucket of this rate and burst.
    typing_rate_per_s: float = Field(default=1.0, gt=0)
    typing_burst: int = Field(default=5, ge=1)
    # How long conversation members (typing) and a user's peers (presence) are cached.
    members_cache_s: float = Field(default=10.0, ge=0)
    peers_cache_s: float = Field(default=30.0, ge=0)
    # At most this many peers hear about one user's presence change.
    presence_max_peers: int = Field(default=5000, ge=0)
    # Presence changes are pushed to the members of direct chats and of groups of at most this many members. In a
    # bigger group, pushing every member's every connect and disconnect to every other member costs the square of
    # its size (a 1,000-member group: a million events as its members come online); there ``GET /v1/sync`` says
    # who is online, as large chat products do.
    presence_push_max_members: int = Field(default=100, ge=2)
    # Bound on each route-table call and each ``Deliver`` call to another bff instance (typing, presence).
    io_timeout_s: float = Field(default=2.0, gt=0)


class LimitsConf(_Section):
    """Rate limits the bff applies per user (and per username for logins), shared by every instance through
    Redis (in-process under ``tidings dev``). A limited request answers 429 RATE_LIMITED with ``Retry-After``."""

    enabled: bool = True
    # Messages per user (REST, WebSocket and gRPC stream together): a token bucket of this rate and burst.
    send_per_s: float = Field(default=20.0, gt=0)
    send_burst: int = Field(default=100, ge=1)
    # Failed logins of one username allowed in a row; after them, one more attempt every ``login_backoff_s``
    # (whether or not the account exists, so the limit tells nothing about it).
    login_failures: int = Field(default=5, ge=1)
    login_backoff_s: float = Field(default=30.0, gt=0)
    # Open connections (WebSocket and gRPC stream) of one user across the fleet.
    connections_per_user: int = Field(default=20, ge=1)


class TaskConf(_Section):
    """Scheduled work (the ``task`` module), run by one task process of the fleet at a time."""

    # How often the scheduler checks which jobs are due (and that this process still runs them).
    tick_s: float = Field(default=1.0, gt=0, le=60)
    # Refresh tokens are deleted this long after they expire (until then a client is told TOKEN_EXPIRED).
    refresh_token_grace_s: float = Field(default=7 * 86_400, ge=0)
    retention_every_s: float = Field(default=3600.0, gt=0)


class AppConf(_Section):
    name: str = "tidings"
    env: str = "dev"
    # How long a stopping process may drain in-flight work before it is cut off.
    stop_timeout_s: float = Field(default=10.0, gt=0)


class Settings(BaseSettings):
    """The whole configuration of a Tidings process."""

    model_config = SettingsConfigDict(
        env_prefix="TIDINGS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    app: AppConf = AppConf()
    log: LogConf = LogConf()
    trace: TraceConf = TraceConf()
    modules: Modules = Modules()
    database: DatabaseConf = DatabaseConf()
    cache: CacheConf = CacheConf()
    bus: BusConf = BusConf()
    search: SearchConf = SearchConf()
    idgen: IdGenConf = IdGenConf()
    auth: AuthConf = AuthConf()
    realtime: RealtimeConf = RealtimeConf()
    limits: LimitsConf = LimitsConf()
    task: TaskConf = TaskConf()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init arguments; the environment overrides it.
        return env_settings, init_settings


def load(path: str | Path | None) -> Settings:
    """Read ``path`` (if given), apply ``TIDINGS_*`` overrides and validate, or raise ``ConfigError``."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        data = loaded
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """One line per problem, each naming the dotted key."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "<root>"
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key")
        else:
            shown = "" if "secret" in key or "url" in key else f" (got {error.get('input')!r})"
            problems.append(f"{key}: {error['msg']}{shown}")
    return "invalid config: " + "; ".join(problems)
