"""Message retention deletes each conversation's expired prefix, search documents first, and goes on from its
checkpoint after a run that stopped midway."""

from __future__ import annotations

import pytest

from tests.unit.task.fakes import FakeTaskRuns
from tidings.pkg.clock import FakeClock
from tidings.task.biz.retention import MessageRetention

NOW = 1_800_000_000_000


class FakeHistory:
    def __init__(self, conversations: dict[int, tuple[str, list[int]]]) -> None:
        # conversation id -> (kind, each seq's creation time in seq order, starting at seq 1)
        self.kinds = {cid: kind for cid, (kind, _) in conversations.items()}
        self.messages = {cid: dict(enumerate(times, start=1)) for cid, (_, times) in conversations.items()}
        self.log: list[str] = []

    async def conversations_after(self, conversation_id: int, limit: int) -> list[tuple[int, str]]:
        return [(cid, self.kinds[cid]) for cid in sorted(self.kinds) if cid > conversation_id][:limit]

    async def expired_through(self, conversation_id: int, before_ms: int, limit: int) -> int | None:
        through = None
        for seq in sorted(self.messages[conversation_id])[:limit]:
            if self.messages[conversation_id][seq] >= before_ms:
                break
            through = seq
        return through

    async def delete_through(self, conversation_id: int, seq: int) -> int:
        self.log.append(f"history {conversation_id} <= {seq}")
        gone = [s for s in self.messages[conversation_id] if s <= seq]
        for s in gone:
            del self.messages[conversation_id][s]
        return len(gone)

    async def count_older(self, kind: str, before_ms: int) -> int:
        return sum(
            1
            for cid, times in self.messages.items()
            if self.kinds[cid] == kind
            for at in times.values()
            if at < before_ms
        )


class FakeSearch:
    def __init__(self, history: FakeHistory) -> None:
        self._history = history
        self.down = False

    async def delete_below(self, conversation_id: int, seq: int) -> int:
        if self.down:
            raise ConnectionError("search unreachable")
        self._history.log.append(f"search {conversation_id} < {seq}")
        return 0


class FakeWindows:
    def __init__(self) -> None:
        self.forgotten: list[int] = []

    async def forget(self, conversation_id: int) -> None:
        self.forgotten.append(conversation_id)


def old(days: float) -> int:
    return NOW - int(days * 86_400_000)


async def retention(history: FakeHistory, search: FakeSearch, windows: FakeWindows, **options: int) -> MessageRetention:
    lease = FakeTaskRuns(FakeClock(NOW)).leases("p1").lease("retention")
    assert await lease.acquire()
    return MessageRetention(history, search, windows, lease, lambda: NOW, keep_s={"group": 3 * 86_400}, **options)


async def test_each_conversations_expired_prefix_goes_search_first_and_the_rest_stays() -> None:
    history = FakeHistory(
        {
            1: ("group", [old(9), old(8), old(1), old(7), old(2)]),
            2: ("direct", [old(9), old(9)]),
            3: ("group", [old(1)]),
        }
    )
    windows = FakeWindows()
    task = await retention(history, FakeSearch(history), windows, batch=1)
    assert await task.preview() == 3
    assert await task.run() == 2
    assert sorted(history.messages[1]) == [3, 4, 5]  # seq 4 is old, but behind seq 3: never a hole
    assert sorted(history.messages[2]) == [1, 2]  # direct chats have no age here
    assert history.log == ["search 1 < 2", "history 1 <= 1", "search 1 < 3", "history 1 <= 2"]
    assert windows.forgotten == [1, 1]


async def test_a_search_that_does_not_answer_deletes_nothing_and_the_next_run_does_it() -> None:
    history = FakeHistory({1: ("group", [old(9), old(8)])})
    search = FakeSearch(history)
    search.down = True
    task = await retention(history, search, FakeWindows())
    with pytest.raises(ConnectionError):
        await task.run()
    assert sorted(history.messages[1]) == [1, 2]
    search.down = False
    assert await task.run() == 2


async def test_a_run_stops_after_its_batches_and_the_next_goes_on_from_the_checkpoint() -> None:
    history = FakeHistory({cid: ("group", [old(9)]) for cid in range(1, 8)})
    task = await retention(history, FakeSearch(history), FakeWindows(), batch=2, max_batches=2)
    assert await task.run() == 4
    assert sorted(cid for cid, left in history.messages.items() if left) == [5, 6, 7]
    assert await task.run() == 3
    assert not any(history.messages.values())


async def test_without_an_age_nothing_is_looked_at() -> None:
    history = FakeHistory({1: ("group", [old(9)])})
    lease = FakeTaskRuns(FakeClock(NOW)).leases("p1").lease("retention")
    task = MessageRetention(history, FakeSearch(history), FakeWindows(), lease, lambda: NOW, keep_s={})
    assert await task.preview() == 0
    assert await task.run() == 0
    assert history.messages[1]
