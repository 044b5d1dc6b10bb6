"""OpenSearch through opensearch-py async: index, search, update and delete by query, a standard analyzer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opensearchpy import AsyncOpenSearch

from tests.integration.conftest import OPENSEARCH_URL, unique


@pytest.fixture
async def client() -> AsyncIterator[AsyncOpenSearch]:
    client = AsyncOpenSearch(hosts=[OPENSEARCH_URL], timeout=10)
    yield client
    await client.close()


@pytest.fixture
async def index(client: AsyncOpenSearch) -> AsyncIterator[str]:
    name = unique("smoke-messages")
    await client.indices.create(
        index=name,
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "conversation_id": {"type": "keyword"},
                    "text": {"type": "text", "analyzer": "cjk"},
                    "recalled": {"type": "boolean"},
                }
            },
        },
    )
    yield name
    await client.indices.delete(index=name)


async def test_index_search_update_and_delete_by_query(client: AsyncOpenSearch, index: str) -> None:
    docs = [
        ("1", "10", "meet at the harbour at noon"),
        ("2", "10", "the harbour is closed"),
        ("3", "20", "港口今天关闭"),
    ]
    for doc_id, conversation_id, body in docs:
        await client.index(
            index=index, id=doc_id, body={"conversation_id": conversation_id, "text": body, "recalled": False}
        )
    await client.indices.refresh(index=index)

    found = await client.search(index=index, body={"query": {"match": {"text": "harbour"}}})
    assert {hit["_id"] for hit in found["hits"]["hits"]} == {"1", "2"}
    cjk = await client.search(index=index, body={"query": {"match": {"text": "港口"}}})
    assert [hit["_id"] for hit in cjk["hits"]["hits"]] == ["3"]

    updated = await client.update_by_query(
        index=index,
        body={
            "query": {"term": {"conversation_id": "10"}},
            "script": {"source": "ctx._source.recalled = true", "lang": "painless"},
        },
        refresh=True,
    )
    assert updated["updated"] == 2
    recalled = await client.count(index=index, body={"query": {"term": {"recalled": True}}})
    assert recalled["count"] == 2

    deleted = await client.delete_by_query(
        index=index, body={"query": {"term": {"conversation_id": "10"}}}, refresh=True
    )
    assert deleted["deleted"] == 2
    remaining = await client.count(index=index)
    assert remaining["count"] == 1
