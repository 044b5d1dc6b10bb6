"""The reindex task on MariaDB and OpenSearch, through the task module's wiring: the index rebuilt from the database
and swapped in while a searcher in another process keeps getting answers, a write made during the rebuild kept, an
interrupted run resumed into the same index, and the old indices gone; and its source's contract on MariaDB."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import pytest
from opensearchpy import AsyncOpenSearch
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.search import message
from tests.contracts.task_reindex import IndexSourceContract, Seed, seed_tables, stored, user
from tests.integration.conftest import OPENSEARCH_URL, unique
from tests.integration.test_search_opensearch import drop_namespace
from tests.unit.task.fakes import RecordingProgress
from tidings.bootstrap import Infra
from tidings.conf import Settings, TaskConf
from tidings.pkg.clock import SystemClock
from tidings.pkg.conf import DatabaseConf, SearchConf
from tidings.search.model import KINDS, IndexVersions, MessageQuery
from tidings.search.opensearch import OpenSearchIndex
from tidings.service.chat.message import Message
from tidings.task import wire as task_wire
from tidings.task.biz.reindex import MESSAGES, IndexSource, Rebuild, StoredUser
from tidings.task.data.leases import SQLLeases
from tidings.task.data.reindex import SQLIndexSource
from tidings.task.service.reindex import REINDEX

CONVERSATIONS = tuple(range(1, 11))
# Ten conversations of twenty messages each (ids conversation * 1000 + seq), all holding the word searched.
STORED = [stored(c, s, text=f"lighthouse {c}-{s}", sender_id=c % 3 + 1) for c in CONVERSATIONS for s in range(1, 21)]
USERS = [user(1, "Ada"), user(2, "Bob"), user(3, "Carol")]
# Another process: what it reads of the write alias it keeps this long.
ALIAS_CACHE_S = 0.2


class TestIndexSourceOnMariaDB(IndexSourceContract):
    @pytest.fixture
    def source(self, mysql_engine: AsyncEngine, statements: AsyncEngine) -> IndexSource:
        return SQLIndexSource(mysql_engine, statements=statements)

    @pytest.fixture
    def seed(self, mysql_engine: AsyncEngine) -> Seed:
        async def into_tables(messages: Sequence[Message], users: Sequence[StoredUser]) -> None:
            await seed_tables(mysql_engine, messages, users)

        return into_tables


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    name = unique("reindex") + "_"
    yield name
    await drop_namespace(name)


@pytest.fixture
async def infra(mysql_url: str, mysql_engine: AsyncEngine, namespace: str) -> AsyncIterator[Infra]:
    """The task process's infrastructure: batches of 20, the write alias read again after ALIAS_CACHE_S."""
    search = SearchConf(
        kind="opensearch", url=OPENSEARCH_URL, namespace=namespace, replicas=0, alias_cache_s=ALIAS_CACHE_S
    )
    infra = Infra(Settings(database=DatabaseConf(url=mysql_url), search=search, task=TaskConf(batch_size=20)))
    yield infra
    await infra.close()


@pytest.fixture
async def elsewhere(namespace: str) -> AsyncIterator[OpenSearchIndex]:
    """The index as another process has it (the index job writing, chat searching)."""
    index = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace, replicas=0, alias_cache_s=ALIAS_CACHE_S)
    await index.ensure()
    yield index
    await index.close()


@pytest.fixture
async def client() -> AsyncIterator[AsyncOpenSearch]:
    client = AsyncOpenSearch(hosts=[OPENSEARCH_URL], timeout=10)
    yield client
    await client.close()


@dataclass
class Searcher:
    """Searches for "lighthouse" over and over until stopped, keeping each answer's ids or the error it got."""

    index: OpenSearchIndex
    answers: list[set[int]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                page = await self.index.search_messages(MessageQuery("lighthouse", CONVERSATIONS, limit=50))
                self.answers.append({hit.doc.id for hit in page.items})
            except Exception as exc:
                self.errors.append(exc)
            await asyncio.sleep(0.01)


class Interrupted(Exception):
    """The run stopped midway, as if its process had died there."""


class InterruptedAfter(RecordingProgress):
    """A run's progress that stops the run once ``items`` are done (their batches kept in the checkpoint)."""

    def __init__(self, items: int) -> None:
        super().__init__()
        self._items = items

    def advance(self, n: int) -> None:
        super().advance(n)
        if self.done >= self._items:
            raise Interrupted


async def test_the_index_is_rebuilt_and_swapped_in_under_a_searcher_that_never_goes_without_an_answer(
    infra: Infra, elsewhere: OpenSearchIndex, client: AsyncOpenSearch, mysql_engine: AsyncEngine, namespace: str
) -> None:
    # The database, and the index as the index job left it: every message, a stale one the database does not have,
    # one whose recall it missed, and no user.
    recalled = replace(STORED[0], text="", recalled=True)
    await seed_tables(mysql_engine, [recalled, *STORED[1:]], USERS)
    await elsewhere.index_messages(
        [message(m.id, m.text, conversation_id=m.conversation_id, at_ms=m.created_at_ms) for m in STORED]
        + [message(999_999, "lighthouse stale", conversation_id=1)]
    )
    await client.indices.refresh(index=f"{namespace}*")
    searcher = Searcher(OpenSearchIndex(OPENSEARCH_URL, namespace=namespace))
    searching = asyncio.create_task(searcher.run())
    scheduler = await task_wire.build(infra, registry=CollectorRegistry())
    lease = SQLLeases(mysql_engine, ttl_s=30, clock=SystemClock()).lease(REINDEX)
    try:
        assert await elsewhere.versions("messages") == IndexVersions(1, (1,))
        # A run that stops after its third batch of messages.
        interrupted = await scheduler.run_now(REINDEX, InterruptedAfter(3 * 20))
        assert interrupted.outcome == "error"
        rebuild = Rebuild.decode(await lease.load_checkpoint())
        assert rebuild is not None
        assert (rebuild.versions, rebuild.phase, rebuild.after) == ({"messages": 2, "users": 2}, MESSAGES, (3, 20))
        assert await elsewhere.versions("messages") == IndexVersions(1, (1, 2))

        # Meanwhile the index job indexes a message (persisted later, say): it goes to both indices.
        await elsewhere.index_messages([message(5_021, "lighthouse during the rebuild", conversation_id=5)])

        progress = RecordingProgress()
        resumed = await scheduler.run_now(REINDEX, progress)
        assert (resumed.outcome, resumed.error) == ("ok", "")
        assert resumed.items == len(STORED) - 3 * 20 + len(USERS)
        assert progress.totals == [len(STORED) + len(USERS)]
        assert progress.done == len(STORED) + len(USERS)  # the interrupted run's part counted from the checkpoint
        await asyncio.sleep(0.1)  # a few more searches after the swap
    finally:
        searching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await searching
        await searcher.index.close()

    assert searcher.errors == []
    assert searcher.answers
    assert all(searcher.answers), "a search found nothing"
    assert 999_999 in searcher.answers[0]
    last = searcher.answers[-1]
    assert 999_999 not in last
    first = await elsewhere.search_messages(MessageQuery("lighthouse", (1,), limit=50))
    assert {hit.doc.id for hit in first.items} == {m.id for m in STORED[1:20]}  # the first one was recalled
    names = {u.id: u.display_name for u in USERS}
    assert all(hit.doc.sender_name == names[hit.doc.sender_id] for hit in first.items)
    during = await elsewhere.search_messages(MessageQuery("during", (5,)))
    assert [hit.doc.id for hit in during.items] == [5_021]
    assert {u.id for u in await elsewhere.search_users("carol", 10)} == {3}

    for kind in KINDS:
        assert await elsewhere.versions(kind) == IndexVersions(2, (2,))
    indices = await client.indices.get_alias(index=f"{namespace}*")
    assert sorted(indices) == [f"{namespace}messages-v2", f"{namespace}users-v2"]
    assert await lease.load_checkpoint() == ""
