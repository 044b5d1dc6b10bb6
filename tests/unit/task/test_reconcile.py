"""Reconcile evicts the cached entries that still disagree with the database after the settle time, counts them,
and walks the conversations a bounded number per run from its checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

from tests.unit.task.fakes import FakeTaskRuns
from tidings.pkg import log
from tidings.pkg.clock import FakeClock
from tidings.task.biz.reconcile import ConversationState, Drift, Reconcile


class FakeConversations:
    def __init__(self, count: int) -> None:
        self.rows = {cid: ConversationState(cid, 5, 1_000, {1: 5}) for cid in range(1, count + 1)}
        # Runs before a read of chosen conversations (a write landing between the two looks).
        self.before_read = lambda: None

    async def after(self, conversation_id: int, limit: int) -> list[ConversationState]:
        return [self.rows[cid] for cid in sorted(self.rows) if cid > conversation_id][:limit]

    async def states(self, conversation_ids: Sequence[int]) -> list[ConversationState]:
        self.before_read()
        return [self.rows[cid] for cid in conversation_ids]


class FakeCache:
    """Cached max seqs by conversation; ``on_check`` runs before each comparison (a write landing meanwhile)."""

    def __init__(self) -> None:
        self.max_seqs: dict[int, int] = {}
        self.evicted: list[Drift] = []
        self.checked: list[list[int]] = []

    async def drift(self, states: Sequence[ConversationState]) -> list[Drift]:
        self.checked.append([state.id for state in states])
        return [
            Drift("head", state.id)
            for state in states
            if state.id in self.max_seqs and self.max_seqs[state.id] != state.max_seq
        ]

    async def evict(self, drifts: Sequence[Drift]) -> None:
        self.evicted += drifts
        for drift in drifts:
            del self.max_seqs[drift.conversation_id]


def reconcile(conversations: FakeConversations, cache: FakeCache, table: FakeTaskRuns, **options: int) -> Reconcile:
    lease = table.leases("p1").lease("reconcile")
    return Reconcile(conversations, cache, lease, log.get("test"), settle_s=0, **options)


async def test_drift_is_evicted_and_counted_and_agreeing_entries_stay() -> None:
    conversations, cache, table = FakeConversations(10), FakeCache(), FakeTaskRuns(FakeClock(0))
    cache.max_seqs = {2: 4, 3: 5, 7: 9}
    task = reconcile(conversations, cache, table, batch=4)
    assert await table.leases("p1").lease("reconcile").acquire()
    assert await task.preview() == 2
    assert cache.evicted == []
    assert await task.run() == 2
    assert cache.evicted == [Drift("head", 2), Drift("head", 7)]
    assert cache.max_seqs == {3: 5}
    assert await task.run() == 0


async def test_a_disagreement_gone_by_the_second_look_is_a_write_in_flight_not_drift() -> None:
    conversations, cache, table = FakeConversations(3), FakeCache(), FakeTaskRuns(FakeClock(0))
    cache.max_seqs = {2: 6}  # the persist job stored seq 6 and moved the cache; the database read was just before
    task = reconcile(conversations, cache, table)
    assert await table.leases("p1").lease("reconcile").acquire()

    def the_write() -> None:
        conversations.rows[2] = ConversationState(2, 6, 1_000, {1: 5})

    conversations.before_read = the_write
    assert await task.run() == 0
    assert cache.evicted == []


async def test_a_run_walks_at_most_its_batches_and_the_next_goes_on_from_the_checkpoint() -> None:
    conversations, cache, table = FakeConversations(10), FakeCache(), FakeTaskRuns(FakeClock(0))
    task = reconcile(conversations, cache, table, batch=3, max_batches=2)
    lease = table.leases("p1").lease("reconcile")
    assert await lease.acquire()
    await task.run()
    assert cache.checked == [[1, 2, 3], [4, 5, 6]]
    assert await lease.load_checkpoint() == "6"
    await task.run()
    assert cache.checked[2:] == [[7, 8, 9], [10]]  # the end of the table...
    assert await lease.load_checkpoint() == "0"  # ...so the next run starts over
    await task.run()
    assert cache.checked[4] == [1, 2, 3]
