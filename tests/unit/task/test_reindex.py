"""The reindex task on the embedded search index: the database copied into new versions, swapped in, the old ones
dropped; writes, late messages and renames during the rebuild kept; a run that dies goes on into the same versions;
and its source's contract on the fake and on SQLite (the embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.search import message, user_ids
from tests.contracts.task_reindex import IndexSourceContract, Seed, seed_tables, stored, user
from tests.unit.task.fakes import FakeIndexSource, FakeTaskRuns, RecordingLogger, RecordingProgress
from tidings.pkg.clock import FakeClock
from tidings.search.fts5 import FTS5Index
from tidings.search.model import KINDS, IndexVersions, MessageQuery
from tidings.service.chat.message import Message
from tidings.task.biz.errors import LeaseLost, Unavailable
from tidings.task.biz.reindex import MESSAGES, RECENT_MESSAGES, IndexSource, Rebuild, Reindex, StoredUser
from tidings.task.data.leases import MAX_CHECKPOINT
from tidings.task.data.reindex import SQLIndexSource
from tidings.task.service.reindex import REINDEX, reindex_job
from tidings.task.wire import schedules

NOW = 1_800_000_000_000
HOUR_MS = 3_600_000
# Stored long before the rebuild began (beyond its margin).
LONG_AGO = NOW - 10 * HOUR_MS
CONVERSATIONS = (1, 2, 3)


class TestIndexSourceInMemory(IndexSourceContract):
    @pytest.fixture
    def fake(self) -> FakeIndexSource:
        return FakeIndexSource()

    @pytest.fixture
    def source(self, fake: FakeIndexSource) -> IndexSource:
        return fake

    @pytest.fixture
    def seed(self, fake: FakeIndexSource) -> Seed:
        return fake.seed


# ``engine``: a migrated SQLite database (tests/unit/conftest.py).
class TestIndexSourceOnSQLite(IndexSourceContract):
    @pytest.fixture
    def source(self, engine: AsyncEngine) -> IndexSource:
        return SQLIndexSource(engine)

    @pytest.fixture
    def seed(self, engine: AsyncEngine) -> Seed:
        async def into_tables(messages: Sequence[Message], users: Sequence[StoredUser]) -> None:
            await seed_tables(engine, messages, users)

        return into_tables


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[FTS5Index]:
    index = FTS5Index(str(tmp_path / "search.db"))
    await index.ensure()
    yield index
    await index.close()


@pytest.fixture
async def table() -> FakeTaskRuns:
    """The task runs, the reindex task's lease held by the process ``p1``."""
    table = FakeTaskRuns(FakeClock(NOW))
    assert await table.leases("p1").lease(REINDEX).acquire()
    return table


@pytest.fixture
async def source() -> FakeIndexSource:
    """Four messages of Ada's in conversations 1 and 2 (ids 1001, 1002, 2001, 2002), and Ada, Bob and Carol."""
    source = FakeIndexSource()
    await source.seed(
        [stored(c, s, at_ms=LONG_AGO + s, text=f"harbour {c}-{s}") for c in (1, 2) for s in (1, 2)],
        [user(1, "Ada", updated_at_ms=LONG_AGO), user(2, "Bob", updated_at_ms=LONG_AGO), user(3, "Carol")],
    )
    return source


def reindex(source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns, *, margin_s: float = 0) -> Reindex:
    lease = table.leases("p1").lease(REINDEX)
    return Reindex(source, index, index, lease, table.clock.now_ms, RecordingLogger(), batch=2, margin_s=margin_s)


async def harbour(index: FTS5Index) -> dict[int, str]:
    """The messages found for "harbour", and their senders' names."""
    page = await index.search_messages(MessageQuery("harbour", CONVERSATIONS, limit=50))
    return {hit.doc.id: hit.doc.sender_name for hit in page.items}


async def checkpoint(table: FakeTaskRuns) -> Rebuild | None:
    return Rebuild.decode(await table.leases("p1").lease(REINDEX).load_checkpoint())


async def test_a_rebuild_copies_the_database_swaps_it_in_and_drops_the_old_versions(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    # The index drifted: a message the database no longer has, a recall it missed, a user it never heard of.
    await source.seed([replace(stored(3, 1, at_ms=LONG_AGO), text="", recalled=True)], [])
    await index.index_messages(
        [message(9, "harbour gone", conversation_id=1), message(3001, "harbour secret", conversation_id=3)]
    )
    assert set(await harbour(index)) == {9, 3001}
    progress = RecordingProgress()
    assert await reindex(source, index, table).run(progress) == 5 + 3
    assert await harbour(index) == {1001: "Ada", 1002: "Ada", 2001: "Ada", 2002: "Ada"}
    assert await user_ids(index, "bob") == {2}
    for kind in KINDS:
        assert await index.versions(kind) == IndexVersions(2, (2,))
    assert (progress.totals, progress.done) == ([8], 8)
    assert await table.leases("p1").lease(REINDEX).load_checkpoint() == ""  # done: the next run starts afresh
    # The recall holds even when its send is replayed.
    await index.index_messages([message(3001, "harbour secret", conversation_id=3, at_ms=LONG_AGO)])
    assert 3001 not in await harbour(index)
    # A second rebuild takes the next versions.
    assert await reindex(source, index, table).run() == 5 + 3
    assert await index.versions("messages") == IndexVersions(3, (3,))


async def test_what_the_index_job_writes_during_the_rebuild_is_kept(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    async def a_message_arrives() -> None:
        if source.reads == 2:  # the index job indexes a message the persist job has not stored yet
            await index.index_messages([message(7, "harbour live", conversation_id=3)])

    source.on_read = a_message_arrives
    await reindex(source, index, table).run()
    assert set(await harbour(index)) == {1001, 1002, 2001, 2002, 7}


async def test_a_message_stored_after_the_copy_passed_its_place_is_caught_up(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    late = stored(1, 3, at_ms=NOW - 1_000, text="harbour late")

    async def stored_late() -> None:
        if source.reads == 3:  # conversation 1 was copied; its newest message was indexed before the rebuild began
            await source.seed([late], [])

    source.on_read = stored_late
    assert await reindex(source, index, table, margin_s=60).run() == 4 + 3 + 1
    assert 1003 in await harbour(index)


async def test_a_rename_between_a_batchs_read_of_names_and_its_write_is_caught_up(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    names = source.sender_names

    async def renamed_meanwhile(user_ids: Collection[int]) -> dict[int, str]:
        found = await names(user_ids)
        if source.users[1].display_name == "Ada":  # account renames her, and the index job applies it at once
            source.users[1] = user(1, "Ada Lovelace", updated_at_ms=NOW)
            await index.rename_sender(1, "Ada Lovelace")
        return found

    source.sender_names = renamed_meanwhile  # type: ignore[method-assign]
    await reindex(source, index, table).run()
    assert set((await harbour(index)).values()) == {"Ada Lovelace"}


async def test_a_run_that_dies_goes_on_into_the_same_versions_from_its_checkpoint(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    await index.index_messages([message(9, "harbour gone", conversation_id=1)])
    source.fail_after = 1
    with pytest.raises(Unavailable):
        await reindex(source, index, table).run()
    kept = await checkpoint(table)
    assert kept is not None
    assert (kept.versions, kept.phase, kept.after, kept.done) == ({"messages": 2, "users": 2}, MESSAGES, (1, 2), 2)
    assert await index.versions("messages") == IndexVersions(1, (1, 2))
    assert set(await harbour(index)) == {9}  # searches keep reading the old version meanwhile
    source.fail_after = None
    progress = RecordingProgress()
    assert await reindex(source, index, table).run(progress) == 2 + 3
    assert (progress.totals, progress.done) == ([7], 7)
    assert set(await harbour(index)) == {1001, 1002, 2001, 2002}
    for kind in KINDS:
        assert await index.versions(kind) == IndexVersions(2, (2,))


async def test_a_rebuild_killed_before_its_first_checkpoint_goes_on_in_the_version_it_created(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    assert await index.create_next("messages") == 2
    await reindex(source, index, table).run()
    for kind in KINDS:
        assert await index.versions(kind) == IndexVersions(2, (2,))


async def test_a_checkpoint_whose_versions_are_gone_starts_over(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    lease = table.leases("p1").lease(REINDEX)
    await lease.save_checkpoint(Rebuild({"messages": 5, "users": 5}, {"messages": 1, "users": 1}, NOW).encode())
    await reindex(source, index, table).run()
    assert await index.versions("messages") == IndexVersions(2, (2,))
    assert set(await harbour(index)) == {1001, 1002, 2001, 2002}


async def test_a_run_that_lost_its_lease_stops_at_its_next_batch_and_swaps_nothing(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    async def paused_past_the_lease() -> None:
        if source.reads == 2:
            table.clock.advance(s=60)
            assert await table.leases("p2").lease(REINDEX).acquire()

    source.on_read = paused_past_the_lease
    with pytest.raises(LeaseLost):
        await reindex(source, index, table).run()
    assert await index.versions("messages") == IndexVersions(1, (1, 2))


def test_the_checkpoint_fits_the_lease_and_reads_back() -> None:
    big = 2**63 - 1
    rebuild = Rebuild(
        {"messages": 99_999, "users": 99_999},
        {"messages": 99_998, "users": 99_998},
        big,
        RECENT_MESSAGES,
        (big,) * 4,
        big,
    )
    assert len(rebuild.encode()) <= MAX_CHECKPOINT
    assert Rebuild.decode(rebuild.encode()) == rebuild
    for unreadable in ("", "12", "{}", '{"v":[1,2],"o":[1,1],"s":1,"p":"nowhere","a":[],"n":0}'):
        assert Rebuild.decode(unreadable) is None


async def test_a_dry_run_estimates_the_documents_and_changes_nothing(
    source: FakeIndexSource, index: FTS5Index, table: FakeTaskRuns
) -> None:
    job = reindex_job(reindex(source, index, table), schedule=None)
    assert (job.name, job.schedule) == (REINDEX, None)
    assert job.preview is not None
    assert await job.preview() == 4 + 3
    assert await index.versions("messages") == IndexVersions(1, (1,))


def test_reindex_runs_on_demand_unless_task_schedules_gives_it_a_schedule() -> None:
    assert schedules({})[REINDEX] is None
    assert schedules({REINDEX: "0 3 * * 0"})[REINDEX] == "0 3 * * 0"
