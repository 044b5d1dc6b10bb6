"""The behaviour every ``SeqAllocator`` must have: strictly increasing, never reused, also across restarts and
when its cache loses everything; run on the fake and in-process on SQLite (unit) and on Redis + MariaDB
(integration).

A test module provides ``adapter``: one kind of allocator on its shared stores (``SeqAdapter``). Allocators that
lease blocks from the database also keep ``BlockLeaseContract`` (and provide ``registry``, the metrics they count
in); those whose separate instances share one order keep ``SharedOrderContract``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from tidings.service.chat.biz.model import Conversation, Kind
from tidings.service.chat.biz.ports import ConversationRepo, SeqAllocator

_ids = itertools.count(5_000_000)


@dataclass(frozen=True)
class SeqAdapter:
    """One kind of allocator on shared stores."""

    # A new allocator instance on the shared stores: one per chat process.
    allocator: Callable[[], SeqAllocator]
    # A new conversation in the stores, by id.
    conversation: Callable[[], Awaitable[int]]
    # What the cache loses when it loses all its data; returns the allocators that carry on.
    lose_cache: Callable[[list[SeqAllocator]], Awaitable[list[SeqAllocator]]]


def conversations_in(repo: ConversationRepo) -> Callable[[], Awaitable[int]]:
    """``SeqAdapter.conversation`` on a conversation store."""

    async def create() -> int:
        cid = next(_ids)
        await repo.create(Conversation(cid, Kind.GROUP, "t", 1, 0, None, 0, 0, 0), [])
        return cid

    return create


class SeqAllocatorContract:
    async def test_seqs_start_at_one_and_increase(self, adapter: SeqAdapter) -> None:
        cid = await adapter.conversation()
        allocator = adapter.allocator()
        seqs = [*await allocator.allocate(cid, 1), *await allocator.allocate(cid, 3)]
        assert seqs == [1, 2, 3, 4]
        more = await allocator.allocate(cid, 250)  # more than one block at once
        assert more == sorted(more)
        assert len(set(more)) == 250
        assert more[0] > 4

    async def test_conversations_have_their_own_sequences(self, adapter: SeqAdapter) -> None:
        a, b = await adapter.conversation(), await adapter.conversation()
        allocator = adapter.allocator()
        assert await allocator.allocate(a, 2) == [1, 2]
        assert await allocator.allocate(b, 1) == [1]

    async def test_many_conversations_at_once_each_get_their_own_next_seqs(self, adapter: SeqAdapter) -> None:
        a, b, c = [await adapter.conversation() for _ in range(3)]
        allocator = adapter.allocator()
        assert await allocator.allocate(a, 2) == [1, 2]
        # c needs more than a block: the rest of one and a new one, in the same call as the others.
        given = await allocator.allocate_many({a: 3, b: 1, c: 250})
        assert given[a] == [3, 4, 5]
        assert given[b] == [1]
        assert given[c] == sorted(given[c])
        assert len(set(given[c])) == 250
        assert (await allocator.allocate(c, 1))[0] > max(given[c])

    async def test_concurrent_allocations_of_many_instances_never_collide(self, adapter: SeqAdapter) -> None:
        cid = await adapter.conversation()
        allocators = [adapter.allocator() for _ in range(3)]

        async def run(allocator: SeqAllocator) -> list[int]:
            taken: list[int] = []
            for _ in range(40):
                batch = await allocator.allocate(cid, random.randint(1, 7))
                assert batch == sorted(batch)
                taken += batch
            return taken

        runs = await asyncio.gather(*(run(allocators[n % 3]) for n in range(6)))
        every = [seq for taken in runs for seq in taken]
        assert len(every) == len(set(every))
        for taken in runs:  # each caller's own allocations come in increasing order
            assert taken == sorted(taken)

    async def test_a_restarted_allocator_never_reuses_a_seq(self, adapter: SeqAdapter) -> None:
        cid = await adapter.conversation()
        before = await adapter.allocator().allocate(cid, 5)
        after = await adapter.allocator().allocate(cid, 5)
        assert min(after) > max(before)

    async def test_losing_the_cache_mid_stream_reuses_no_seq(self, adapter: SeqAdapter) -> None:
        cid = await adapter.conversation()
        allocators = [adapter.allocator() for _ in range(3)]
        taken: list[int] = []
        lost = asyncio.Event()

        async def run(index: int) -> None:
            for round_ in range(60):
                if round_ == 20 and index == 0:
                    allocators[:] = await adapter.lose_cache(allocators)
                    lost.set()
                taken.extend(await allocators[index % len(allocators)].allocate(cid, random.randint(1, 5)))
                await asyncio.sleep(0)

        await asyncio.gather(*(run(index) for index in range(3)))
        assert lost.is_set()
        assert len(taken) == len(set(taken))
        newest = await adapter.allocator().allocate(cid, 1)
        assert newest[0] > max(taken)

    async def test_an_unknown_conversation_gets_no_seqs(self, adapter: SeqAdapter) -> None:
        with pytest.raises(Exception, match="does not exist"):
            await adapter.allocator().allocate(next(_ids), 1)


class BlockLeaseContract:
    """For allocators that lease blocks of seqs from the database's counter: each lease is counted."""

    async def test_each_block_lease_is_counted(self, adapter: SeqAdapter, registry: CollectorRegistry) -> None:
        cid = await adapter.conversation()
        allocator = adapter.allocator()

        def leases() -> float:
            samples = [s for m in registry.collect() for s in m.samples if s.name.endswith("seq_block_leases_total")]
            return sum(sample.value for sample in samples)

        await allocator.allocate(cid, 1)
        assert leases() == 1
        await allocator.allocate(cid, 10)
        assert leases() == 1  # still the first block
        await allocator.allocate(cid, 150)
        assert leases() == 2


class SharedOrderContract:
    """For allocators whose separate instances share one order (Redis), not only uniqueness (in-process: one
    process runs chat in ``tidings dev``, so there is nobody to share with)."""

    async def test_allocations_one_after_another_increase_across_instances(self, adapter: SeqAdapter) -> None:
        cid = await adapter.conversation()
        allocators = [adapter.allocator() for _ in range(3)]
        seqs = [seq for n in range(30) for seq in await allocators[n % 3].allocate(cid, 1 + n % 4)]
        assert seqs == sorted(seqs)
        assert len(seqs) == len(set(seqs))
