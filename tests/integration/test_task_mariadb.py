"""Task leases on MariaDB: the runs' contract, a fenced write refused (and rolled back) once the lease passed to
another process, even while that write was in flight, and two processes running a task once per scheduled time
across a hand-over."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import new_id
from tests.contracts.task_runs import TTL_S, Table, TaskRunsContract
from tidings import migrations
from tidings.pkg import db
from tidings.pkg.clock import FakeClock
from tidings.pkg.conf import DatabaseConf
from tidings.service.account.store.tokens import count_expired_tokens, prune_expired_tokens
from tidings.service.account.tables import refresh_tokens
from tidings.service.chat.biz.ports import Reservation
from tidings.service.chat.data.dedup import SQLDedupStore
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.message import Message
from tidings.service.chat.store.reservations import count_prunable_reservations, prune_reservations
from tidings.task.biz.errors import LeaseLost
from tidings.task.biz.progress import Progress
from tidings.task.biz.pruning import Pruning
from tidings.task.data.leases import SQLLease, SQLLeases
from tidings.task.data.pruning import SQLAgedRows
from tidings.task.data.runs import SQLRunLog
from tidings.task.server.scheduler import RunningElsewhere, Scheduler, TaskMetrics
from tidings.task.service.jobs import Job


@pytest.fixture
def table(mysql_engine: AsyncEngine, clock: FakeClock) -> Table:
    return (lambda holder: SQLLeases(mysql_engine, ttl_s=TTL_S, clock=clock, holder=holder).lease), SQLRunLog(
        mysql_engine
    )


class TestTaskRunsOnMariaDB(TaskRunsContract):
    pass


async def _expired_tokens(engine: AsyncEngine, count: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(refresh_tokens),
            [
                {"id": i, "user_id": 1, "family_id": i, "secret_hash": "h", "expires_at_ms": 1_000}
                for i in range(1, count + 1)
            ],
        )


def expired_tokens(engine: AsyncEngine, lease: SQLLease) -> SQLAgedRows:
    return SQLAgedRows(engine, lease, prune=prune_expired_tokens, count=count_expired_tokens)


async def _tokens_left(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(refresh_tokens)) or 0)


async def test_a_write_of_a_lost_lease_is_refused_and_changes_nothing(mysql_url: str) -> None:
    await migrations.upgrade(mysql_url)
    # Two processes: two engines (pools) on the same database.
    engines = [db.create_engine(DatabaseConf(url=mysql_url)) for _ in range(2)]
    clock = FakeClock(1_796_569_380_000)
    try:
        await _expired_tokens(engines[0], 10)
        paused = SQLLeases(engines[0], ttl_s=TTL_S, clock=clock, holder="p1").lease("retention")
        other = SQLLeases(engines[1], ttl_s=TTL_S, clock=clock, holder="p2").lease("retention")
        tokens = expired_tokens(engines[0], paused)
        assert await paused.acquire()
        assert await tokens.prune(2_000, 3) == 3  # its lease holds: the batch is written
        clock.advance(s=TTL_S + 1)  # paused past its lease
        assert await other.acquire()
        with pytest.raises(LeaseLost):
            await tokens.prune(2_000, 3)
        assert await _tokens_left(engines[0]) == 7
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_take_over_waits_for_the_write_in_flight_and_the_next_write_is_refused(mysql_url: str) -> None:
    await migrations.upgrade(mysql_url)
    engines = [db.create_engine(DatabaseConf(url=mysql_url)) for _ in range(2)]
    clock = FakeClock(1_796_569_380_000)
    try:
        await _expired_tokens(engines[0], 10)
        paused = SQLLeases(engines[0], ttl_s=TTL_S, clock=clock, holder="p1").lease("retention")
        other = SQLLeases(engines[1], ttl_s=TTL_S, clock=clock, holder="p2").lease("retention")
        assert await paused.acquire()
        clock.advance(s=TTL_S + 1)
        taken = asyncio.Event()
        async with engines[0].begin() as conn:
            await paused.fence(conn)  # the write's check passed: the lease row is share-locked until it commits
            take_over = asyncio.create_task(other.acquire())
            take_over.add_done_callback(lambda _: taken.set())
            await asyncio.sleep(0.3)
            assert not taken.is_set()  # the take-over waits for the write in flight...
            await conn.execute(refresh_tokens.delete().where(refresh_tokens.c.id == 1))
        assert await take_over  # ...and goes through once it committed
        tokens = expired_tokens(engines[0], paused)
        with pytest.raises(LeaseLost):
            await tokens.prune(2_000, 3)
        assert await _tokens_left(engines[0]) == 9
    finally:
        for engine in engines:
            await engine.dispose()


async def test_two_task_processes_run_a_task_once_per_scheduled_time_across_a_hand_over(mysql_url: str) -> None:
    await migrations.upgrade(mysql_url)
    engines = [db.create_engine(DatabaseConf(url=mysql_url)) for _ in range(2)]
    clock = FakeClock(1_796_569_380_000)  # 15:03 UTC; the task runs at minute 0 of every hour
    calls: list[str] = []

    async def count(_: Progress) -> int:
        calls.append("retention")
        await asyncio.sleep(0.2)
        return 1

    def process(engine: AsyncEngine, holder: str) -> Scheduler:
        jobs = [Job("retention", schedule="0 * * * *", run=count)]
        leases = SQLLeases(engine, ttl_s=TTL_S, clock=clock, holder=holder)
        return Scheduler(jobs, leases, SQLRunLog(engine), TaskMetrics(CollectorRegistry()), clock=clock)

    first, second = process(engines[0], "p1"), process(engines[1], "p2")
    try:
        # Started together: one runs it, the other finds it running there, then done.
        ran = await asyncio.gather(first.tick(), second.tick())
        assert sorted(ran) == [[], ["retention"]]
        assert await first.tick() == []
        assert await second.tick() == []
        # Nor may two one-off runs of an operator's go side by side.
        both = await asyncio.gather(first.run_now("retention"), second.run_now("retention"), return_exceptions=True)
        assert sorted(type(outcome).__name__ for outcome in both) == ["Run", RunningElsewhere.__name__]
        clock.advance(ms=57 * 60_000)  # 16:00
        assert await second.tick() == ["retention"]
        assert await first.tick() == []
        [run] = (await SQLRunLog(engines[1]).last_runs(["retention"])).values()
        assert (run.outcome, run.items, run.started_at_ms) == ("ok", 1, clock.now_ms())
    finally:
        await first.stop()
        await second.stop()
        for engine in engines:
            await engine.dispose()


async def test_the_reservations_task_prunes_stored_sends_past_the_window_and_a_late_retry_still_resolves(
    mysql_engine: AsyncEngine, clock: FakeClock
) -> None:
    dedup, messages = SQLDedupStore(mysql_engine), SQLMessageRepo(mysql_engine)
    now = clock.now_ms()

    def draft(client_msg_id: str, created_at_ms: int, seq: int) -> Reservation:
        message = Message(new_id(), 7, seq, 42, client_msg_id, "hello", created_at_ms)
        return Reservation(message, sent=False, lease_until_ms=created_at_ms + 10_000)

    old_stored, old_unstored, recent = draft("a", now - 90_000, 1), draft("b", now - 90_000, 2), draft("c", now, 3)
    await dedup.reserve([old_stored, old_unstored, recent])
    await messages.persist([old_stored.message, recent.message])
    lease = SQLLeases(mysql_engine, ttl_s=TTL_S, clock=clock, holder="p1").lease("reservations")
    assert await lease.acquire()
    pruning = Pruning(
        SQLAgedRows(mysql_engine, lease, prune=prune_reservations, count=count_prunable_reservations),
        clock.now_ms,
        keep_s=60,
        batch=1,
    )
    assert await pruning.preview() == 1
    assert await pruning.run() == 1
    assert await pruning.preview() == 0
    # The pruned send's retry is not reserved again: it resolves to the stored original.
    assert await dedup.reserve([draft("a", now, 9)]) == set()
    found = await dedup.get_many([old_stored.key, old_unstored.key, recent.key])
    assert found[old_stored.key].message == old_stored.message
    assert not found[old_unstored.key].sent  # never stored: kept for its retry to take over
    assert found[recent.key].sent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_796_569_380_000)
