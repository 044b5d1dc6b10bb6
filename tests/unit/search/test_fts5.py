"""The embedded mode's search index (SQLite FTS5) against the search contract, and what only it does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contracts.search import IndexAdminContract, SearchIndexContract, found, message
from tidings.search.fts5 import FTS5Index


@pytest.fixture
async def search(tmp_path: Path) -> AsyncIterator[FTS5Index]:
    index = FTS5Index(str(tmp_path / "search.db"), namespace="t_")
    await index.ensure()
    yield index
    await index.close()


class TestFTS5Index(SearchIndexContract):
    pass


class TestFTS5IndexAdmin(IndexAdminContract):
    pass


async def test_ensure_is_idempotent_and_namespaces_keep_apart(tmp_path: Path) -> None:
    path = str(tmp_path / "search.db")
    first, second = FTS5Index(path, namespace="a_"), FTS5Index(path, namespace="b_")
    try:
        for index in (first, second, first):
            await index.ensure()
        await first.index_messages([message(1, "only in the first")])
        assert await found(first, "first") == [1]
        assert await found(second, "first") == []
    finally:
        await first.close()
        await second.close()


async def test_another_process_sees_a_rebuild_at_once_and_ensure_keeps_it(tmp_path: Path) -> None:
    path = str(tmp_path / "search.db")
    rebuilder, writer = FTS5Index(path, namespace="t_"), FTS5Index(path, namespace="t_")
    try:
        await rebuilder.ensure()
        await writer.index_messages([message(1, "before the rebuild")])
        version = await rebuilder.create_next("messages")
        assert rebuilder.settle_s == 0
        await writer.index_messages([message(2, "during the rebuild")])  # no wait: it reads the versions written
        await rebuilder.swap("messages", version)
        await rebuilder.drop("messages", 1)
        assert await found(writer, "rebuild") == [2]
        await writer.ensure()  # a later migrate neither brings the first version back nor moves the search
        assert await writer.versions("messages") == await rebuilder.versions("messages")
        assert await found(writer, "rebuild") == [2]
    finally:
        await rebuilder.close()
        await writer.close()
