"""The embedded mode's search index (SQLite FTS5) against the search contract, and what only it does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contracts.search import SearchIndexContract, found, message
from tidings.search.fts5 import FTS5Index


@pytest.fixture
async def search(tmp_path: Path) -> AsyncIterator[FTS5Index]:
    index = FTS5Index(str(tmp_path / "search.db"), namespace="t_")
    await index.ensure()
    yield index
    await index.close()


class TestFTS5Index(SearchIndexContract):
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
