"""The search index on the real OpenSearch against the search contract, and its templates, indices and aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opensearchpy import AsyncOpenSearch

from tests.contracts.search import IndexAdminContract, SearchIndexContract, found, message
from tests.integration.conftest import OPENSEARCH_URL, unique
from tidings.search.model import SearchUnavailable
from tidings.search.opensearch import OpenSearchIndex


async def drop_namespace(namespace: str) -> None:
    """Delete the indices and templates of ``namespace``."""
    client = AsyncOpenSearch(hosts=[OPENSEARCH_URL], timeout=30)
    try:
        await client.indices.delete(index=f"{namespace}*", params={"expand_wildcards": "all"})
        templates = await client.indices.get_index_template(name=f"{namespace}*", params={"ignore": 404})
        for template in templates.get("index_templates", []):
            await client.indices.delete_index_template(name=template["name"])
    finally:
        await client.close()


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    name = unique("search") + "_"
    yield name
    await drop_namespace(name)


@pytest.fixture
async def search(namespace: str) -> AsyncIterator[OpenSearchIndex]:
    index = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace, replicas=0, refresh=True)
    await index.ensure()
    yield index
    await index.close()


class TestOpenSearchIndex(SearchIndexContract):
    pass


class TestOpenSearchIndexAdmin(IndexAdminContract):
    pass


async def test_ensure_makes_versioned_indices_behind_aliases_idempotently(namespace: str) -> None:
    index = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace, replicas=0, refresh=True)
    client = AsyncOpenSearch(hosts=[OPENSEARCH_URL], timeout=10)
    try:
        await index.ensure()
        await index.index_messages([message(1, "kept across ensure")])
        await index.ensure()
        aliases = await client.indices.get_alias(index=f"{namespace}*")
        assert aliases == {
            f"{namespace}messages-v1": {
                "aliases": {f"{namespace}messages": {}, f"{namespace}messages-write": {"is_write_index": True}}
            },
            f"{namespace}users-v1": {
                "aliases": {f"{namespace}users": {}, f"{namespace}users-write": {"is_write_index": True}}
            },
        }
        assert await found(index, "across") == [1]
        # A later version of the index takes the template's analysis and mappings too.
        await client.indices.create(index=f"{namespace}messages-v2")
        mapping = await client.indices.get_mapping(index=f"{namespace}messages-v2")
        text = mapping[f"{namespace}messages-v2"]["mappings"]["properties"]["text"]
        assert text["analyzer"] == "tidings_text"
        assert text["fields"]["std"]["analyzer"] == "standard"
    finally:
        await client.close()
        await index.close()


async def test_a_search_with_no_index_is_unavailable(namespace: str) -> None:
    index = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace)
    try:
        with pytest.raises(SearchUnavailable):
            await found(index, "anything")
    finally:
        await index.close()


async def test_a_server_that_does_not_answer_is_unavailable() -> None:
    index = OpenSearchIndex("http://127.0.0.1:9", timeout_s=1)
    try:
        with pytest.raises(SearchUnavailable):
            await found(index, "anything")
        with pytest.raises(SearchUnavailable):
            await index.index_messages([message(1, "lost")])
    finally:
        await index.close()


async def test_a_write_before_migrate_is_unavailable_and_creates_no_index(namespace: str) -> None:
    index = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace)
    client = AsyncOpenSearch(hosts=[OPENSEARCH_URL], timeout=10)
    try:
        with pytest.raises(SearchUnavailable):
            await index.index_messages([message(1, "too early")])
        assert await client.indices.get(index=f"{namespace}*") == {}
    finally:
        await client.close()
        await index.close()


async def test_a_writer_elsewhere_writes_the_rebuilt_index_once_its_aliases_are_read_again(namespace: str) -> None:
    rebuilder = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace, replicas=0, refresh=True)
    # Another process's writer; with no cache it reads the write alias on every write.
    writer = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace, replicas=0, refresh=True, alias_cache_s=0)
    client = AsyncOpenSearch(hosts=[OPENSEARCH_URL], timeout=10)
    try:
        await rebuilder.ensure()
        version = await rebuilder.create_next("messages")
        await writer.index_messages([message(1, "written to both")])
        for index in (f"{namespace}messages-v1", f"{namespace}messages-v{version}"):
            assert (await client.count(index=index))["count"] == 1
        await rebuilder.swap("messages", version)
        await rebuilder.drop("messages", 1)
        await writer.index_messages([message(2, "written to the new one")])
        assert await found(writer, "written") == [2, 1]
        # No write recreated the dropped index, and a later migrate leaves the aliases where the swap put them.
        await rebuilder.ensure()
        aliases = await client.indices.get_alias(index=f"{namespace}*")
        assert aliases == {
            f"{namespace}messages-v2": {
                "aliases": {f"{namespace}messages": {}, f"{namespace}messages-write": {"is_write_index": True}}
            },
            f"{namespace}users-v1": {
                "aliases": {f"{namespace}users": {}, f"{namespace}users-write": {"is_write_index": True}}
            },
        }
    finally:
        await client.close()
        await writer.close()
        await rebuilder.close()
