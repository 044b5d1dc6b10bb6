"""The relational store: one async SQLAlchemy engine per process, on SQLite (embedded) or MySQL/MariaDB.

Schema changes are each owner's Alembic migrations; ``tidings.migrations`` applies them on either engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tidings.pkg.conf import DatabaseConf


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message names where it was looked for."""


# The driver failures that mean "the database is down, restarting or too slow", not "this statement is wrong":
# what an adapter turns into its domain's Unavailable.
UNREACHABLE: tuple[type[Exception], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    DatabaseUnavailable,
)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or every failure of a task group's) is the database being out of reach."""
    if isinstance(exc, BaseExceptionGroup):
        return all(unreachable(inner) for inner in exc.exceptions)
    return isinstance(exc, UNREACHABLE)


def create_engine(
    conf: DatabaseConf, *, autocommit: bool = False, on_ping: Callable[[], None] | None = None
) -> AsyncEngine:
    """Build the engine for ``conf.url`` with the pool and timeouts each backend needs; ``on_ping`` is called for
    each ping of an idle connection (a round trip).

    ``autocommit`` (MySQL/MariaDB only) makes every statement commit by itself: the engine for reads and for
    writes of one statement (``Infra.statements_engine``). A transaction costs a round trip to end it, a COMMIT,
    or the ROLLBACK that closes a read's snapshot; here each statement is its own transaction, and the driver's
    rollback on close is skipped (``skip_autocommit_rollback``: nothing is open to roll back). Writes of several
    statements that must land together use the other engine's ``begin()``.
    """
    url = make_url(conf.url)
    if backend(conf.url) == "sqlite":
        if autocommit:
            raise ValueError("SQLite has one writer: use the one engine for every statement")
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=conf.echo, connect_args={"timeout": conf.connect_timeout_s})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        echo=conf.echo,
        pool_size=conf.pool_size,
        max_overflow=conf.pool_size,
        # No ROLLBACK on checkin: every connection comes back clean (``begin()`` blocks end in COMMIT or ROLLBACK,
        # and a ``connect()`` block's close rolls back a transaction its reads began), so it would be a round trip
        # per transaction for nothing.
        pool_reset_on_return=None,
        # MySQL closes idle connections after wait_timeout; recycle before that.
        pool_recycle=1800,
        pool_timeout=conf.connect_timeout_s,
        connect_args={"connect_timeout": conf.connect_timeout_s, "charset": "utf8mb4"},
        **({"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True} if autocommit else {}),
    )
    _ping_when_idle(engine, conf.ping_idle_s, on_ping)
    return engine


# Where a pooled connection notes when it was last checked in.
_IDLE_SINCE = "tidings.idle_since"


def _ping_when_idle(engine: AsyncEngine, idle_s: float, on_ping: Callable[[], None] | None) -> None:
    """Ping (COM_PING, no statement) a connection on checkout when it sat in the pool ``idle_s`` or longer.

    A connection that died with the server (a restart, a failover) is then replaced before a request uses it:
    the ping fails, and the pool connects afresh. SQLAlchemy's ``pool_pre_ping`` does the same on *every* checkout,
    a round trip per transaction on the hot paths; here a busy pool pings nothing. What a busy pool needs is what
    SQLAlchemy does anyway: the first statement that fails on a dead connection invalidates every connection
    checked out before it, so a server that goes away under load costs the requests in flight then (they fail as
    they would have while it was down) and no more. A restart takes far longer than ``idle_s``, so a connection
    unused since before it is pinged; ``idle_s = 0`` pings on every checkout.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_s:
            return  # just connected, or in use a moment ago
        if on_ping is not None:
            on_ping()
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool's signal to drop this connection and check out (or open) another one.
            raise exc.DisconnectionError(f"pooled connection is dead: {error!r}") from error


def create_replica_engine(conf: DatabaseConf, *, on_ping: Callable[[], None] | None = None) -> AsyncEngine:
    """The engine of ``conf.replica_url``: the primary's pool and timeouts, autocommit (each read is one statement
    and one round trip, nothing to roll back)."""
    if not conf.replica_url:
        raise ValueError("database.replica_url is not set")
    return create_engine(conf.model_copy(update={"url": conf.replica_url}), autocommit=True, on_ping=on_ping)


class ReadReplica:
    """A read replica of the primary and whether to use it now: a short circuit breaker.

    A read that fails on the replica as unreachable (``UNREACHABLE``, or its time ran out) trips it: for
    ``retry_after_s`` every read meant for the replica goes to the primary without trying, so a stopped replica
    costs one failed attempt per process and period rather than one per request. Then the next read tries the
    replica again. ``on_read`` is told where each read meant for the replica was served (``replica`` or
    ``primary``), ``on_failure`` of each failure; both feed ``tidings_db_replica_*``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retry_after_s: float = 5.0,
        on_read: Callable[[str], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: Any = None,
    ) -> None:
        self.engine = engine
        self._retry_after_s = retry_after_s
        self._on_read = on_read
        self._on_failure = on_failure
        self._clock = clock
        self._log = logger
        self._skip_until = float("-inf")
        self._tripped = False

    @property
    def available(self) -> bool:
        """Whether to try the replica now (no failure within the last ``retry_after_s``)."""
        return self._clock() >= self._skip_until

    def failed(self, error: BaseException) -> None:
        """A read on the replica failed as unreachable: the primary serves replica reads for ``retry_after_s``."""
        self._skip_until = self._clock() + self._retry_after_s
        if self._on_failure is not None:
            self._on_failure()
        if not self._tripped and self._log is not None:
            self._log.warning(
                "db.replica_unreachable",
                replica=describe(str(self.engine.url)),
                error=_first_line(error) if str(error) else type(error).__name__,
                retry_after_s=self._retry_after_s,
            )
        self._tripped = True

    def served(self, by: str) -> None:
        """A read meant for the replica was answered by ``by`` (``replica`` or ``primary``)."""
        if by == "replica" and self._tripped:
            self._tripped = False
            if self._log is not None:
                self._log.info("db.replica_back", replica=describe(str(self.engine.url)))
        if self._on_read is not None:
            self._on_read(by)


def is_replica_failure(error: BaseException) -> bool:
    """Whether a read on the replica failed in a way the primary may not: unreachable, or out of time."""
    return unreachable(error) or isinstance(error, TimeoutError)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers run beside the one writer; NORMAL sync is durable in WAL mode across process crashes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def backend(url: str) -> str:
    """The dialect of ``url`` (``mysql``, ``sqlite``), as SQLAlchemy names it."""
    return make_url(url).get_backend_name()


def describe(url: str) -> str:
    """Where the database is, without the password: for error messages and logs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite file {parsed.database}"
    return f"{parsed.get_backend_name()} at {parsed.host}:{parsed.port or 3306}/{parsed.database}"


async def ping(engine: AsyncEngine, timeout_s: float) -> None:
    """Run ``SELECT 1`` or raise ``DatabaseUnavailable`` naming the database."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (TimeoutError, OSError, Exception) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else _first_line(exc)
        raise DatabaseUnavailable(f"cannot reach {describe(str(engine.url))}: {reason}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
