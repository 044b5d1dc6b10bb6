"""One task runner per database on MariaDB: the named lock is exclusive, handed over on release and on a crash, and
the runs' log keeps a task to one run per scheduled time across the hand-over."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.task_runs import RunLogContract
from tidings import migrations
from tidings.pkg import db
from tidings.pkg.clock import FakeClock
from tidings.pkg.conf import DatabaseConf
from tidings.task.biz.runs import RunLog
from tidings.task.data.runs import SQLRunLog
from tidings.task.server.leadership import MySQLLeadership, lock_name
from tidings.task.server.scheduler import NotTheRunner, Scheduler, TaskMetrics
from tidings.task.service.jobs import Job


async def test_one_runner_at_a_time_and_the_role_passes_on_release(mysql_engine: AsyncEngine) -> None:
    first, second = MySQLLeadership(mysql_engine), MySQLLeadership(mysql_engine)
    try:
        assert await first.hold()
        assert not await second.hold()
        assert await first.hold()  # asking again keeps the role (the lock is not taken twice)
        await first.release()
        assert await second.hold()
        assert not await first.hold()
    finally:
        await first.release()
        await second.release()


async def test_a_runner_whose_connection_dies_loses_the_role_to_the_next(mysql_url: str) -> None:
    await migrations.upgrade(mysql_url)
    # Two processes: two engines (pools) on the same database.
    engines = [db.create_engine(DatabaseConf(url=mysql_url)) for _ in range(2)]
    first, second = MySQLLeadership(engines[0]), MySQLLeadership(engines[1])
    try:
        assert await first.hold()
        async with engines[1].connect() as conn:
            holder = await conn.scalar(text("SELECT IS_USED_LOCK(:n)"), {"n": lock_name(engines[1].url.database or "")})
            await conn.execute(text(f"KILL CONNECTION {int(holder)}"))
        assert await second.hold()
        # The old runner notices it lost the role (its connection is gone) instead of running beside the new one.
        try:
            held = await first.hold()
        except Exception:  # a dead connection may also surface as an error: not the runner either
            held = False
        assert not held
    finally:
        await first.release()
        await second.release()
        for engine in engines:
            await engine.dispose()


def test_lock_names_are_per_database_and_fit_mysql_limit() -> None:
    assert lock_name("tidings") == "tidings.task.tidings"
    long = lock_name("d" * 64)
    assert len(long) == 64
    assert long != lock_name("e" * 64)


@pytest.fixture
def runs(mysql_engine: AsyncEngine) -> RunLog:
    return SQLRunLog(mysql_engine)


class TestRunLogOnMariaDB(RunLogContract):
    pass


async def test_two_task_processes_run_a_task_once_per_scheduled_time_across_a_hand_over(mysql_url: str) -> None:
    await migrations.upgrade(mysql_url)
    # Two processes: two engines (pools), each with its lock connection and run log, on the same database.
    engines = [db.create_engine(DatabaseConf(url=mysql_url)) for _ in range(2)]
    clock = FakeClock(1_796_569_380_000)  # 15:03 UTC; the task runs at minute 0 of every hour
    calls: list[str] = []

    async def count() -> int:
        calls.append("retention")
        return 1

    def process(engine: AsyncEngine) -> Scheduler:
        jobs = [Job("retention", schedule="0 * * * *", run=count)]
        return Scheduler(
            jobs, MySQLLeadership(engine), SQLRunLog(engine), TaskMetrics(CollectorRegistry()), clock=clock
        )

    first, second = process(engines[0]), process(engines[1])
    try:
        assert await first.tick() == ["retention"]
        assert await second.tick() == []  # not the runner
        with pytest.raises(NotTheRunner):  # nor may an operator's one-off run go beside the runner
            await second.run_now("retention")
        await first.stop()  # the runner goes away within the hour
        assert await second.tick() == []  # takes over, and the log says this hour's run is done
        clock.advance(ms=57 * 60_000)  # 16:00
        assert await second.tick() == ["retention"]
        assert calls == ["retention", "retention"]
        [run] = (await SQLRunLog(engines[1]).last_runs(["retention"])).values()
        assert (run.outcome, run.items, run.started_at_ms) == ("ok", 1, clock.now_ms())
    finally:
        await first.stop()
        await second.stop()
        for engine in engines:
            await engine.dispose()
