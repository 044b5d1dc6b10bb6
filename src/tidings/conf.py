"""Typed configuration: a YAML file, overridden by ``TIDINGS_`` environment variables, validated at start.

``Settings`` holds the framework's sections (``tidings.pkg.conf``) and each module's own (here). Nested keys are
separated by ``__`` in the environment: ``TIDINGS_DATABASE__URL`` overrides ``database.url``. Unknown keys and wrong
types are errors, reported as one line that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import croniter
from pydantic import AfterValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tidings.pkg.conf import (
    ApiConf,
    AppConf,
    BusConf,
    CacheConf,
    ConfigError,
    DatabaseConf,
    IdGenConf,
    Listen,
    LogConf,
    ModuleConf,
    SearchConf,
    Section,
    TraceConf,
)


class BffConf(ApiConf):
    """The bff's listeners. ``http`` and ``grpc`` are public (clients reach them); ``internal_grpc`` serves only
    other Tidings processes (``Deliver`` from the push job and from other bff instances, with
    ``auth.internal_secret``), and ``metrics`` serves ``/metrics`` (with ``/healthz`` and ``/readyz``), so neither
    is reachable where clients are. Each has a default, so one overridden port leaves the others in place."""

    http: Listen = Listen(port=8080)
    grpc: Listen | None = Listen(port=9080)
    internal_grpc: Listen = Listen(port=9180)
    metrics: Listen = Listen(port=8086)
    # gRPC reflection on the public port: lists the services to anyone, so off unless a developer wants it.
    reflection: bool = False
    # Slow clients on the public HTTP port: a request's headers must arrive within ``header_timeout_s`` of its
    # first byte (or of the connection, for the first request), its body within ``body_timeout_s`` after them; an
    # idle keep-alive connection is closed after ``keep_alive_s``.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keep_alive_s: int = Field(default=5, ge=1)
    # Connections (HTTP and WebSocket) one client address may hold at once; 0 for no cap (behind a proxy every
    # client has the proxy's address: cap at the proxy instead).
    max_connections_per_client: int = Field(default=256, ge=0)
    # Sends go to chat in batches per shard of conversations (the conversation id modulo this), and each shard's
    # batches to one chat instance while the instances stay the same: a conversation's sends meet in one chat
    # process, which publishes them in seq order (docs/ARCHITECTURE.md, "Many instances"). Several shards per
    # chat instance spread the sends evenly over the instances.
    chat_send_shards: int = Field(default=16, ge=1, le=1024)


class AdminConf(ApiConf):
    """The back office. ``http`` serves its API and console to operators (keep it off the clients' network);
    ``metrics`` serves ``/metrics`` (with ``/healthz`` and ``/readyz``)."""

    http: Listen = Listen(port=8085)
    metrics: Listen = Listen(port=8087)
    # The session cookie is sent over HTTPS only; turn off only where the console is reached over plain HTTP on
    # a developer's machine.
    secure_cookies: bool = True
    # How long an operator session lasts; they log in again after it.
    session_ttl_s: float = Field(default=1800.0, ge=60, le=86_400)
    # After this many failed logins for a username (whether or not it exists), logins for it are refused for
    # ``login_lock_s``.
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lock_s: float = Field(default=900.0, ge=1, le=86_400)


JobGroup = Literal["persist", "push", "index", "invalidate"]
JOB_GROUPS: tuple[JobGroup, ...] = ("persist", "push", "index", "invalidate")


def _distinct(groups: list[JobGroup]) -> list[JobGroup]:
    if len(set(groups)) != len(groups):
        raise ValueError("each group once")
    return groups


class JobConf(ModuleConf):
    """The job module: which of its consumer groups this process runs (all of them unless listed). Processes that
    run the same group share its partitions; a group in a process of its own is restarted and scaled apart from the
    others (``invalidate`` runs only on Redis)."""

    http: Listen = Listen(port=8083)
    groups: Annotated[list[JobGroup], AfterValidator(_distinct)] = Field(
        default_factory=lambda: list(JOB_GROUPS), min_length=1
    )


class AccountConf(ModuleConf):
    http: Listen = Listen(port=8081)
    grpc: Listen | None = Listen(port=9081)


class ChatConf(ModuleConf):
    http: Listen = Listen(port=8082)
    grpc: Listen | None = Listen(port=9082)


class TaskModuleConf(ModuleConf):
    http: Listen = Listen(port=8084)


class Modules(Section):
    """Each module's listeners. Every listener has a default in its module's class, so a setting given alone (say
    ``TIDINGS_MODULES__ACCOUNT__DIAL``) leaves the module's others in place."""

    bff: BffConf = BffConf()
    account: AccountConf = AccountConf()
    chat: ChatConf = ChatConf()
    job: JobConf = JobConf()
    task: TaskModuleConf = TaskModuleConf()
    admin: AdminConf = AdminConf()


class AuthConf(Section):
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


class RealtimeConf(Section):
    """The bff's live connections (WebSocket and gRPC stream) and the route table the push job reads."""

    # The address of this very instance's internal gRPC server, which the push job dials for ``Deliver``. Set it
    # per instance (TIDINGS_REALTIME__ADVERTISE) when the listen host is 0.0.0.0; unset, it is the bff's internal
    # gRPC listen address.
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
    # How long the push job keeps a conversation's members. 0 (the default) reads them for every batch: a removed
    # member hears nothing more at once. More saves reads in huge, busy groups, but a removed member may hear that
    # long more of the conversation.
    push_members_cache_s: float = Field(default=0.0, ge=0)
    # At most this many peers hear about one user's presence change.
    presence_max_peers: int = Field(default=5000, ge=0)
    # Presence changes are pushed to the members of direct chats and of groups of at most this many members. In a
    # bigger group, pushing every member's every connect and disconnect to every other member costs the square of
    # its size (a 1,000-member group: a million events as its members come online); there ``GET /v1/sync`` says
    # who is online, as large chat products do.
    presence_push_max_members: int = Field(default=100, ge=2)
    # Bound on each route-table call and each ``Deliver`` call to another bff instance (typing, presence).
    io_timeout_s: float = Field(default=2.0, gt=0)


class LimitsConf(Section):
    """Rate limits the bff applies per user, per username (failed logins) and per client address (failed logins
    and refreshes, registrations), shared by every instance through Redis (in-process under ``tidings dev``). A
    limited request answers 429 RATE_LIMITED with ``Retry-After`` and ``X-RateLimit-*``."""

    enabled: bool = True
    # Messages per user (REST, WebSocket and gRPC stream together): a token bucket of this rate and burst.
    send_per_s: float = Field(default=20.0, gt=0)
    send_burst: int = Field(default=100, ge=1)
    # Failed logins of one username allowed in a row; after them, one more attempt every ``login_backoff_s``
    # (whether or not the account exists, so the limit tells nothing about it), and once ``slow_down_after``
    # times as many failed in a row, one every ``slow_down_after`` times as long: the delay grows with the failures.
    login_failures: int = Field(default=5, ge=1)
    login_backoff_s: float = Field(default=30.0, gt=0)
    # Failed logins and refreshes from one client address (any usernames, any tokens), alike: a wider limit, as
    # many people may share an address (an office, a carrier's NAT).
    address_failures: int = Field(default=50, ge=1)
    address_backoff_s: float = Field(default=5.0, gt=0)
    # The second step of both: after ``slow_down_after`` times the failures, the wait is that many times longer.
    slow_down_after: int = Field(default=4, ge=2, le=100)
    # Accounts registered from one client address: ``registrations_burst`` at once, then one every
    # ``registration_interval_s``.
    registrations_burst: int = Field(default=10, ge=1)
    registration_interval_s: float = Field(default=360.0, gt=0)
    # Open connections (WebSocket and gRPC stream) of one user across the fleet.
    connections_per_user: int = Field(default=20, ge=1)


def _cron(schedule: str) -> str:
    if not croniter.is_valid(schedule):
        raise ValueError("not a cron expression (minute hour day-of-month month day-of-week)")
    return schedule


CronExpression = Annotated[str, AfterValidator(_cron)]


class TaskConf(Section):
    """Scheduled work (the ``task`` module): each task run by one task process of the fleet at a time."""

    # How often the scheduler checks which tasks are due.
    tick_s: float = Field(default=1.0, gt=0, le=60)
    # How long a task's lease holds without renewal: a runner that dies or is paused gives its task to another
    # process this long after its last renewal (renewed every third of it while the task runs).
    lease_ttl_s: float = Field(default=30.0, ge=1, le=3600)
    # Rows a task writes in one transaction (deletes, upserts): short transactions hold their locks briefly.
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    # A pause between two batches of a task, to spread a large backlog's load on the database over time.
    batch_pause_s: float = Field(default=0.0, ge=0, le=60)
    # When each task runs, as a cron expression in UTC, by task name; a task not named here keeps its own default
    # (README, "Scheduled tasks"). An unknown name stops the task module at start.
    schedules: dict[str, CronExpression] = Field(default_factory=dict)
    # Refresh tokens are deleted this long after they expire (until then a client is told TOKEN_EXPIRED).
    refresh_token_grace_s: float = Field(default=7 * 86_400, ge=0)
    # A send's reservation (its client_msg_id) is deleted this long after the send once its message is stored; a
    # retry after that still gets the original message, found in the history by (sender, client_msg_id).
    reservation_retry_window_s: float = Field(default=86_400, ge=60)
    # Messages older than this many days are deleted (with their search documents), per conversation kind; unset:
    # kept for ever. A conversation loses its oldest messages first, so its history stays contiguous.
    message_retention_direct_days: float | None = Field(default=None, gt=0)
    message_retention_group_days: float | None = Field(default=None, gt=0)
    # Conversations the reconcile task checks at once (their heads, member lists and every member's read mark).
    reconcile_batch: int = Field(default=200, ge=1, le=10_000)
    # stats: an hour or day is complete (counted for good, never recomputed) this long after it ended, so the
    # messages the persist job stores late are in; until then each run recomputes it.
    stats_settle_s: float = Field(default=300.0, ge=0, le=86_400)
    # stats: at most this many hours (and as many days) computed per run; a longer backfill goes on at the next runs.
    stats_max_buckets: int = Field(default=168, ge=1, le=10_000)
    # reindex: after its copy, the rebuild copies again what was created (or updated) since it began, less this: a
    # message the index job indexed before the rebuilt index was written, but the persist job stored only after the
    # copy had passed its place. More than the persist job ever lags behind the index job.
    reindex_margin_s: float = Field(default=600.0, ge=0, le=7 * 86_400)


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
