"""The stats task: hourly and daily rollups recomputed from the sources, complete once settled, resumed from the
checkpoint, bounded per run; and its ports' contracts on the fakes and on SQLite (the embedded mode)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.task_runs import held_lease
from tests.contracts.task_stats import (
    DAY0,
    ActivitySourceContract,
    Rollups,
    RollupStoreContract,
    Seed,
    Seeded,
    SentMessage,
    seed_tables,
)
from tests.unit.task.fakes import FakeActivitySource, FakeRollups
from tidings.pkg.clock import FakeClock
from tidings.task.biz.errors import Unavailable
from tidings.task.biz.progress import NO_PROGRESS
from tidings.task.biz.stats import ActivitySource, StatsRollup
from tidings.task.data.stats import SQLActivitySource, SQLRollups
from tidings.task.service.stats import stats
from tidings.task.stats import DAY_MS, HOUR_MS, Activity, ConversationVolume, Grain

MINUTE_MS = 60_000
SETTLE_S = 300


# ``engine``: a migrated SQLite database (tests/unit/conftest.py).
@pytest.fixture(params=["fake", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def source(backend: str, engine: AsyncEngine, fake_source: FakeActivitySource) -> ActivitySource:
    return fake_source if backend == "fake" else SQLActivitySource(engine)


@pytest.fixture
def fake_source() -> FakeActivitySource:
    return FakeActivitySource()


@pytest.fixture
def seed(backend: str, engine: AsyncEngine, fake_source: FakeActivitySource) -> Seed:
    if backend == "fake":
        return fake_source.seed

    async def into_tables(seeded: Seeded) -> None:
        await seed_tables(engine, seeded)

    return into_tables


@pytest.fixture
async def rollups(backend: str, engine: AsyncEngine) -> Rollups:
    return FakeRollups() if backend == "fake" else SQLRollups(engine, await held_lease(engine, "stats"))


class TestActivitySource(ActivitySourceContract):
    pass


class TestRollupStore(RollupStoreContract):
    pass


def rollup(
    source: FakeActivitySource, rollups: FakeRollups, clock: FakeClock, *, max_buckets: int = 1000
) -> StatsRollup:
    return StatsRollup(source, rollups, clock.now_ms, settle_s=SETTLE_S, max_buckets=max_buckets)


def two_days() -> Seeded:
    """Activity on either side of midnight and of an hour's end, the last message at 01:30 on day 1."""
    return Seeded(
        messages=[
            SentMessage(1, 10, DAY0 + 22 * HOUR_MS + 5 * MINUTE_MS),
            SentMessage(1, 11, DAY0 + 23 * HOUR_MS + 59 * MINUTE_MS),
            SentMessage(2, 10, DAY0 + DAY_MS - 1),
            SentMessage(2, 10, DAY0 + DAY_MS),  # midnight: day 1
            SentMessage(3, 12, DAY0 + DAY_MS + 30 * MINUTE_MS),
            SentMessage(2, 12, DAY0 + DAY_MS + HOUR_MS + 30 * MINUTE_MS),
        ],
        users=[DAY0 + 22 * HOUR_MS, DAY0 + DAY_MS + 1],
        conversations=[DAY0 + 22 * HOUR_MS + 1, DAY0 + 22 * HOUR_MS + 2, DAY0 + DAY_MS + 2],
    )


async def test_the_first_run_counts_every_hour_and_day_from_the_first_activity_to_now() -> None:
    source, rollups = FakeActivitySource(), FakeRollups()
    await source.seed(two_days())
    clock = FakeClock(DAY0 + DAY_MS + 2 * HOUR_MS + 3 * MINUTE_MS)  # day 1, 02:03
    done = await rollup(source, rollups, clock).run()
    # Hours 22:00 and 23:00 of day 0, 00:00 to 02:00 of day 1; days 0 and 1.
    assert done == 5 + 2
    hours = await rollups.activity(Grain.HOUR, 0, clock.now_ms())
    assert [(h.start_ms - DAY0) // HOUR_MS for h in hours] == [22, 23, 24, 25, 26]
    assert [(h.messages, h.active_senders, h.new_users, h.new_conversations) for h in hours] == [
        (1, 1, 1, 2),
        (2, 2, 0, 0),
        (2, 2, 1, 1),
        (1, 1, 0, 0),
        (0, 0, 0, 0),
    ]
    # 01:00 ended 3 minutes ago, within the settling time: recomputed next time. 02:00 is still open.
    assert [h.complete for h in hours] == [True, True, True, False, False]
    assert await rollups.activity(Grain.DAY, 0, clock.now_ms()) == [
        Activity(Grain.DAY, DAY0, 3, 2, 1, 2, complete=True),
        Activity(Grain.DAY, DAY0 + DAY_MS, 3, 2, 1, 1, complete=False),
    ]
    assert await rollups.top_conversations(DAY0) == [ConversationVolume(1, 2), ConversationVolume(2, 1)]
    assert await rollups.top_conversations(DAY0 + DAY_MS) == [ConversationVolume(2, 2), ConversationVolume(3, 1)]
    assert rollups.checkpoints == {Grain.HOUR: DAY0 + DAY_MS + HOUR_MS, Grain.DAY: DAY0 + DAY_MS}


async def test_a_rerun_recomputes_from_the_checkpoint_and_changes_nothing_that_did_not_change() -> None:
    source, rollups = FakeActivitySource(), FakeRollups()
    await source.seed(two_days())
    clock = FakeClock(DAY0 + DAY_MS + 2 * HOUR_MS + 3 * MINUTE_MS)
    task = rollup(source, rollups, clock)
    await task.run()
    rows, tops = dict(rollups.rows), dict(rollups.tops)
    # The open and unsettled buckets again: 01:00 and 02:00, and day 1.
    assert await task.run() == 3
    assert (rollups.rows, rollups.tops) == (rows, tops)


async def test_a_message_stored_late_is_counted_while_its_hour_settles() -> None:
    source, rollups = FakeActivitySource(), FakeRollups()
    await source.seed(two_days())
    clock = FakeClock(DAY0 + DAY_MS + 2 * HOUR_MS + 3 * MINUTE_MS)
    task = rollup(source, rollups, clock)
    await task.run()
    # The persist job stores a message sent at 01:59 only now.
    await source.seed(Seeded(messages=[SentMessage(3, 13, DAY0 + DAY_MS + HOUR_MS + 59 * MINUTE_MS)]))
    clock.advance(ms=5 * MINUTE_MS)  # 02:08: 01:00 has settled
    await task.run()
    [late] = await rollups.activity(Grain.HOUR, DAY0 + DAY_MS + HOUR_MS, DAY0 + DAY_MS + 2 * HOUR_MS)
    assert (late.messages, late.active_senders, late.complete) == (2, 2, True)
    assert rollups.checkpoints[Grain.HOUR] == DAY0 + DAY_MS + 2 * HOUR_MS


async def test_a_run_is_bounded_and_the_next_ones_go_on_where_it_stopped() -> None:
    source = FakeActivitySource()
    await source.seed(two_days())
    clock = FakeClock(DAY0 + DAY_MS + 2 * HOUR_MS + 3 * MINUTE_MS)
    unbounded = FakeRollups()
    await rollup(source, unbounded, clock).run()

    bounded = FakeRollups()
    task = rollup(source, bounded, clock, max_buckets=2)
    assert await task.run() == 2 + 2  # 22:00 and 23:00, days 0 and 1
    assert bounded.checkpoints[Grain.HOUR] == DAY0 + DAY_MS
    assert await task.run() == 2 + 1  # 00:00 and 01:00; day 1 again
    assert await task.run() == 2 + 1  # 01:00 (unsettled) and 02:00; day 1 again
    assert bounded.rows == unbounded.rows
    assert bounded.tops == unbounded.tops


async def test_a_run_cut_short_resumes_from_its_last_stored_bucket_with_the_same_numbers() -> None:
    source = FakeActivitySource()
    await source.seed(two_days())
    clock = FakeClock(DAY0 + DAY_MS + 2 * HOUR_MS + 3 * MINUTE_MS)
    clean = FakeRollups()
    await rollup(source, clean, clock).run()

    cut = FakeRollups()
    cut.fail_after = 2
    task = rollup(source, cut, clock)
    with pytest.raises(Unavailable):
        await task.run()
    assert cut.checkpoints == {Grain.HOUR: DAY0 + DAY_MS}  # 22:00 and 23:00 stored
    cut.fail_after = None
    clock.advance(ms=MINUTE_MS)  # the next turn
    assert await task.run() == 3 + 2  # from 00:00, not from the first activity
    assert cut.rows.keys() == clean.rows.keys()
    assert [(r.messages, r.active_senders, r.complete) for r in cut.rows.values()] == [
        (r.messages, r.active_senders, r.complete) for r in clean.rows.values()
    ]


async def test_with_nothing_to_count_the_open_hour_and_day_are_zero() -> None:
    source, rollups = FakeActivitySource(), FakeRollups()
    clock = FakeClock(DAY0 + 5 * HOUR_MS)
    assert await rollup(source, rollups, clock).run() == 2
    assert list(rollups.rows.values()) == [
        Activity(Grain.HOUR, DAY0 + 5 * HOUR_MS, 0, 0, 0, 0, complete=False),
        Activity(Grain.DAY, DAY0, 0, 0, 0, 0, complete=False),
    ]
    assert rollups.checkpoints == {}


async def test_a_dry_run_counts_the_buckets_a_run_would_compute_and_stores_nothing() -> None:
    source, rollups = FakeActivitySource(), FakeRollups()
    await source.seed(two_days())
    job = stats(rollup(source, rollups, FakeClock(DAY0 + DAY_MS + 2 * HOUR_MS)), schedule="10 * * * *")
    assert job.preview is not None
    assert await job.preview() == 7
    assert (rollups.rows, rollups.saves, source.reads) == ({}, 0, 0)
    assert await job.run(NO_PROGRESS) == 7
