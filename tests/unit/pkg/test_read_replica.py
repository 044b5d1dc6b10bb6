"""Read routing (``SQLRepo._replica_read``) and the replica's circuit breaker (``db.ReadReplica``): on two SQLite
files standing in for a primary and a replica that hold different rows, and a replica we can take away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf
from tidings.pkg.repo import SQLRepo

RETRY_AFTER_S = 5.0


class Repo(SQLRepo):
    """One read that may be behind (``_replica_read``) and one that may not (``_read``), of the same row."""

    async def stale_ok(self) -> str:
        async def read(conn: AsyncConnection) -> str:
            return str((await conn.execute(text("SELECT name FROM t"))).scalar_one())

        return await self._replica_read(read)

    async def fresh(self) -> str:
        async with self._read() as conn:
            return str((await conn.execute(text("SELECT name FROM t"))).scalar_one())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Refused:
    """What ``engine.connect()`` gives while the server is down: entering it fails as the driver does."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    async def __aenter__(self) -> AsyncConnection:
        raise self._error

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None


class SwitchableEngine:
    """A replica engine that can be taken down (each connect is refused with ``error``) and brought back; counts
    the connects tried."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.url = engine.url
        self.error: Exception | None = None
        self.connects = 0

    def connect(self) -> Any:
        self.connects += 1
        return Refused(self.error) if self.error is not None else self._engine.connect()


class Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def warning(self, event: str, **_: Any) -> None:
        self.events.append(event)

    def info(self, event: str, **_: Any) -> None:
        self.events.append(event)


async def sqlite(path: Path, name: str) -> AsyncEngine:
    engine = db.create_engine(DatabaseConf(url=f"sqlite+aiosqlite:///{path}"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (name TEXT)"))
        await conn.execute(text("INSERT INTO t VALUES (:name)"), {"name": name})
    return engine


@pytest.fixture
async def primary(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await sqlite(tmp_path / "primary.db", "new")
    yield engine
    await engine.dispose()


@pytest.fixture
async def replica_engine(tmp_path: Path) -> AsyncIterator[SwitchableEngine]:
    engine = await sqlite(tmp_path / "replica.db", "old")
    yield SwitchableEngine(engine)
    await engine.dispose()


class Observed:
    def __init__(self, engine: SwitchableEngine, clock: Clock) -> None:
        self.served: list[str] = []
        self.failures = 0
        self.log = Log()
        self.replica = db.ReadReplica(
            cast(AsyncEngine, engine),
            retry_after_s=RETRY_AFTER_S,
            on_read=self.served.append,
            on_failure=self.failed,
            clock=clock,
            logger=self.log,
        )

    def failed(self) -> None:
        self.failures += 1


async def test_without_a_replica_every_read_is_the_primarys(primary: AsyncEngine) -> None:
    repo = Repo(primary)
    assert await repo.stale_ok() == "new"
    assert await repo.fresh() == "new"


async def test_reads_that_may_be_behind_go_to_the_replica_and_the_others_to_the_primary(
    primary: AsyncEngine, replica_engine: SwitchableEngine
) -> None:
    seen = Observed(replica_engine, Clock())
    repo = Repo(primary, replica=seen.replica)
    assert await repo.stale_ok() == "old"
    assert await repo.fresh() == "new"
    assert seen.served == ["replica"]
    assert seen.failures == 0


@pytest.mark.parametrize(
    "error",
    [
        exc.OperationalError("connect", {}, Exception("(2003) Can't connect to MySQL server")),
        exc.InterfaceError("connect", {}, Exception("connection lost")),
        exc.TimeoutError("QueuePool limit reached"),
    ],
    ids=["refused", "lost", "pool-timeout"],
)
async def test_an_unreachable_replica_sends_its_reads_to_the_primary_for_a_while_then_is_tried_again(
    primary: AsyncEngine, replica_engine: SwitchableEngine, error: Exception
) -> None:
    clock = Clock()
    seen = Observed(replica_engine, clock)
    repo = Repo(primary, replica=seen.replica)
    replica_engine.error = error

    assert await repo.stale_ok() == "new"  # answered by the primary, no error raised
    assert (replica_engine.connects, seen.failures, seen.served) == (1, 1, ["primary"])
    assert seen.log.events == ["db.replica_unreachable"]

    # Within retry_after_s the replica is not even tried.
    clock.now += RETRY_AFTER_S - 0.1
    assert await repo.stale_ok() == "new"
    assert (replica_engine.connects, seen.failures) == (1, 1)

    # Then it is tried again: still down, so another period on the primary (logged once per outage).
    clock.now += 0.2
    assert await repo.stale_ok() == "new"
    assert (replica_engine.connects, seen.failures) == (2, 2)
    assert seen.log.events == ["db.replica_unreachable"]

    # Back: after the period, reads return to it.
    replica_engine.error = None
    clock.now += RETRY_AFTER_S
    assert await repo.stale_ok() == "old"
    assert seen.served == ["primary", "primary", "primary", "replica"]
    assert seen.log.events == ["db.replica_unreachable", "db.replica_back"]


async def test_a_replica_that_does_not_answer_in_time_is_a_failure_too(
    primary: AsyncEngine, replica_engine: SwitchableEngine
) -> None:
    class Hanging:
        async def __aenter__(self) -> AsyncConnection:
            await asyncio.sleep(60)
            raise AssertionError("unreachable")

        async def __aexit__(self, *_: object) -> None:
            return None

    seen = Observed(replica_engine, Clock())
    replica_engine.connect = Hanging  # type: ignore[method-assign]
    repo = Repo(primary, replica=seen.replica, timeout_s=0.2)
    assert await repo.stale_ok() == "new"
    assert seen.failures == 1
    assert not seen.replica.available


async def test_a_wrong_statement_on_the_replica_is_raised_not_hidden(
    primary: AsyncEngine, replica_engine: SwitchableEngine
) -> None:
    # What MySQL answers to a missing table or column: the statement's fault, which the primary would share.
    replica_engine.error = exc.ProgrammingError("SELECT", {}, Exception("(1146) Table 't' doesn't exist"))
    seen = Observed(replica_engine, Clock())
    with pytest.raises(exc.ProgrammingError):
        await Repo(primary, replica=seen.replica).stale_ok()
    assert seen.failures == 0
    assert seen.replica.available


async def test_the_primary_failing_too_is_raised(replica_engine: SwitchableEngine, tmp_path: Path) -> None:
    down = exc.OperationalError("connect", {}, Exception("(2003) Can't connect"))
    engine = await sqlite(tmp_path / "p.db", "new")
    primary = SwitchableEngine(engine)
    primary.error = down
    replica_engine.error = down
    seen = Observed(replica_engine, Clock())
    try:
        with pytest.raises(exc.OperationalError):
            await Repo(cast(AsyncEngine, primary), replica=seen.replica).stale_ok()
    finally:
        await engine.dispose()
    assert seen.served == []


def test_a_replica_needs_a_mysql_primary() -> None:
    DatabaseConf(url="mysql+aiomysql://u:p@h:3316/t", replica_url="mysql+aiomysql://u:p@h:3317/t")
    with pytest.raises(ValueError, match=r"database\.replica_url"):
        DatabaseConf(url="sqlite+aiosqlite:///x.db", replica_url="mysql+aiomysql://u:p@h:3317/t")
    assert DatabaseConf().replica_url == ""
