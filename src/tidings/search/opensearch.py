"""The search index on OpenSearch (opensearch-py's ``AsyncOpenSearch`` and its async bulk helper).

Each kind of document lives in a versioned index (``<ns>messages-v1``) that readers reach through the read alias
(``<ns>messages``) and writers through the write alias (``<ns>messages-write``), so a rebuilt index can take over by
moving the aliases. An index template per kind carries the settings and mappings every version gets; ``ensure``
(run by ``tidings migrate``) puts the templates and creates the first index with its aliases, idempotently.

Writes go to every index behind the write alias: its write index through the alias, and the others (an index being
rebuilt, ``IndexAdmin``) by name. Which indices those are is read from the cluster and kept ``alias_cache_s``, so a
rebuild waits ``settle_s`` after adding its index before it copies, and no write made meanwhile misses it. The swap
moves both aliases in one ``_aliases`` request: a search finds either index whole, never none.

Message text is analysed for CJK as well as Latin text: the standard tokenizer, ``cjk_width`` (full- and half-width
forms folded), ``lowercase`` and ``cjk_bigram`` (Chinese, Japanese and Korean runs as overlapping bigrams, since
they have no spaces between words), plus a ``text.std`` subfield with the standard analyzer, which single CJK
characters match. Names are indexed as edge n-grams of their words, so a prefix finds them.

Writes use external versions (``tidings.search.model``): a bulk item refused for its version was already
overwritten by a newer event, which is success. ``update_by_query`` and ``delete_by_query`` run as background tasks
(``wait_for_completion=false``) awaited with a bound, and run again while they report failures or conflicts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError
from opensearchpy.helpers import async_bulk

from tidings.pkg import log
from tidings.search.model import (
    EVERYWHERE,
    IndexKind,
    IndexVersions,
    MessageDoc,
    MessageHit,
    MessageQuery,
    Page,
    Recall,
    RejectedDocument,
    SearchUnavailable,
    UserDoc,
    decode_cursor,
    encode_cursor,
    merge_spans,
    tombstone,
)

# Private-use characters as highlight tags: they never reach a client, and offsets are computed by removing them.
PRE, POST = "\ue000", "\ue001"
# The longest name prefix indexed; a longer prefix is cut to it when searched.
MAX_PREFIX = 32

_TEXT_ANALYSIS = {
    "analyzer": {
        "tidings_text": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["cjk_width", "lowercase", "cjk_bigram"],
        }
    }
}
_NAME_ANALYSIS = {
    "filter": {"tidings_prefix": {"type": "edge_ngram", "min_gram": 1, "max_gram": MAX_PREFIX}},
    "analyzer": {
        "tidings_name": {"type": "custom", "tokenizer": "standard", "filter": ["cjk_width", "lowercase"]},
        "tidings_name_prefix": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["cjk_width", "lowercase", "tidings_prefix"],
        },
    },
}
_MESSAGES_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "long"},
        "conversation_id": {"type": "long"},
        "sender_id": {"type": "long"},
        "sender_name": {"type": "keyword"},
        "seq": {"type": "long"},
        "created_at_ms": {"type": "long"},
        "text": {
            "type": "text",
            "analyzer": "tidings_text",
            "fields": {"std": {"type": "text", "analyzer": "standard"}},
        },
        "recalled": {"type": "boolean"},
    },
}
_NAME_FIELD = {"type": "text", "analyzer": "tidings_name_prefix", "search_analyzer": "tidings_name"}
_USERS_MAPPING = {
    "dynamic": "strict",
    "properties": {"id": {"type": "long"}, "username": _NAME_FIELD, "display_name": _NAME_FIELD},
}


class OpenSearchIndex:
    """``SearchIndex`` on OpenSearch; ``namespace`` prefixes every index, alias and template name (tests and
    fleets sharing a cluster). ``refresh`` makes each write visible to searches before it returns (tests);
    ``alias_cache_s``: how long the indices behind a write alias are kept before they are read again."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "",
        timeout_s: float = 5.0,
        replicas: int = 1,
        task_timeout_s: float = 300.0,
        task_attempts: int = 3,
        refresh: bool = False,
        alias_cache_s: float = 2.0,
    ) -> None:
        self._client = AsyncOpenSearch(hosts=[url], timeout=timeout_s)
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._replicas = replicas
        self._task_timeout_s = task_timeout_s
        self._task_attempts = task_attempts
        self._refresh = refresh
        self._alias_cache_s = alias_cache_s
        # By kind: until when (monotonic) the indices behind the write alias are taken as known, and the ones
        # written by name (all but the write index, which the alias reaches).
        self._written: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._log = log.get("search.opensearch")

    def read_alias(self, kind: str) -> str:
        return f"{self._namespace}{kind}"

    def write_alias(self, kind: str) -> str:
        return f"{self._namespace}{kind}-write"

    def first_index(self, kind: str) -> str:
        return self.index(kind, 1)

    def index(self, kind: str, version: int) -> str:
        return f"{self._namespace}{kind}-v{version}"

    async def ensure(self) -> None:
        """Put both kinds' templates, then create each kind's first index behind its aliases unless the read alias
        already exists (a rebuilt index may have taken it over)."""
        kinds = {"messages": (_TEXT_ANALYSIS, _MESSAGES_MAPPING), "users": (_NAME_ANALYSIS, _USERS_MAPPING)}
        async with self._translated():
            for kind, (analysis, mappings) in kinds.items():
                await self._client.indices.put_index_template(
                    name=f"{self._namespace}{kind}",
                    body={
                        "index_patterns": [f"{self._namespace}{kind}-v*"],
                        "priority": 100,
                        "template": {
                            "settings": {
                                "number_of_shards": 1,
                                "number_of_replicas": self._replicas,
                                "analysis": analysis,
                            },
                            "mappings": mappings,
                        },
                    },
                )
                read, write = self.read_alias(kind), self.write_alias(kind)
                if await self._client.indices.exists_alias(name=read):
                    continue
                index = self.first_index(kind)
                try:
                    await self._client.indices.create(index=index)
                except RequestError as exc:  # made by an earlier run that stopped before the aliases
                    if exc.error != "resource_already_exists_exception":
                        raise
                await self._client.indices.update_aliases(
                    body={
                        "actions": [
                            {"add": {"index": index, "alias": read}},
                            {"add": {"index": index, "alias": write, "is_write_index": True}},
                        ]
                    }
                )

    async def close(self) -> None:
        await self._client.close()

    # -- writes ---------------------------------------------------------------------------------------------------

    async def index_messages(self, docs: Sequence[MessageDoc]) -> None:
        await self._write("messages", [(doc.id, doc.version, _message_source(doc)) for doc in docs])

    async def recall_messages(self, recalls: Sequence[Recall]) -> None:
        await self.index_messages([tombstone(recall) for recall in recalls])

    async def index_users(self, docs: Sequence[UserDoc]) -> None:
        await self._write("users", [(doc.id, doc.version, _user_source(doc)) for doc in docs])

    async def rename_sender(self, sender_id: int, sender_name: str) -> int:
        # Only documents still carrying another name: a run again after a failure touches what is left.
        body = {
            "query": {
                "bool": {
                    "filter": [{"term": {"sender_id": sender_id}}, {"term": {"recalled": False}}],
                    "must_not": [{"term": {"sender_name": sender_name}}],
                }
            },
            "script": {
                "lang": "painless",
                "source": "ctx._source.sender_name = params.name",
                "params": {"name": sender_name},
            },
        }
        return await self._by_query("update_by_query", body, "updated", what=f"rename of sender {sender_id}")

    async def delete_below(self, conversation_id: int, seq: int) -> int:
        body = {
            "query": {
                "bool": {"filter": [{"term": {"conversation_id": conversation_id}}, {"range": {"seq": {"lt": seq}}}]}
            }
        }
        return await self._by_query(
            "delete_by_query", body, "deleted", what=f"delete of conversation {conversation_id} below seq {seq}"
        )

    # -- rebuilds (IndexAdmin) ------------------------------------------------------------------------------------

    @property
    def settle_s(self) -> float:
        # A writer keeps the indices it writes for alias_cache_s, and a bulk request it made just before may take
        # as long as its bound (twice the timeout) to land.
        return self._alias_cache_s + 2 * self._timeout_s

    async def versions(self, kind: IndexKind) -> IndexVersions:
        async with self._translated():
            searched = await self._client.indices.get_alias(name=self.read_alias(kind))
            written = await self._client.indices.get_alias(name=self.write_alias(kind))
        return IndexVersions(
            max(self._versions(kind, searched), default=0), tuple(sorted(self._versions(kind, written)))
        )

    async def create_next(self, kind: IndexKind) -> int:
        async with self._translated():
            existing = await self._client.indices.get_alias(
                index=f"{self._namespace}{kind}-v*", params={"expand_wildcards": "all"}
            )
            version = max(self._versions(kind, existing), default=0) + 1
            # Behind the write alias from its creation on: never an index that writes could miss.
            await self._client.indices.create(
                index=self.index(kind, version),
                body={"aliases": {self.write_alias(kind): {"is_write_index": False}}},
            )
        self._written.pop(kind, None)
        return version

    async def put_messages(self, version: int, docs: Sequence[MessageDoc]) -> None:
        await self._bulk(
            self.index("messages", version), [(doc.id, doc.version, _message_source(doc)) for doc in docs], alias=False
        )

    async def put_users(self, version: int, docs: Sequence[UserDoc]) -> None:
        await self._bulk(
            self.index("users", version), [(doc.id, doc.version, _user_source(doc)) for doc in docs], alias=False
        )

    async def swap(self, kind: IndexKind, version: int) -> None:
        index, read, write = self.index(kind, version), self.read_alias(kind), self.write_alias(kind)
        async with self._translated():
            # What was put into it is searchable from the first search that reaches it.
            await self._client.indices.refresh(index=index)
            searched = await self._client.indices.get_alias(name=read)
            written = await self._client.indices.get_alias(name=write)
            actions: list[dict[str, Any]] = [
                *({"remove": {"index": other, "alias": read}} for other in searched if other != index),
                *({"remove": {"index": other, "alias": write}} for other in written if other != index),
                {"add": {"index": index, "alias": read}},
                {"add": {"index": index, "alias": write, "is_write_index": True}},
            ]
            await self._client.indices.update_aliases(body={"actions": actions})
        self._written.pop(kind, None)

    async def drop(self, kind: IndexKind, version: int) -> None:
        if (await self.versions(kind)).searched == version:
            raise ValueError(f"{self.index(kind, version)} is searched: swap another version in first")
        async with self._translated():
            await self._client.indices.delete(index=self.index(kind, version), params={"ignore": 404})

    def _versions(self, kind: str, indices: Mapping[str, Any]) -> list[int]:
        """The versions of ``kind`` among the names of ``indices`` (anything else sharing an alias is ignored)."""
        pattern = re.compile(re.escape(f"{self._namespace}{kind}-v") + r"(\d+)")
        return [int(found[1]) for name in indices if (found := pattern.fullmatch(name))]

    # -- reads ----------------------------------------------------------------------------------------------------

    async def search_messages(self, query: MessageQuery) -> Page[MessageHit]:
        after = decode_cursor(query.cursor) if query.cursor is not None else None
        if not query.conversation_ids:
            return Page([])
        # The words go to a match query, which analyses them as text: nothing in them is query syntax.
        body: dict[str, Any] = {
            "size": query.limit + 1,
            "track_total_hits": False,
            "query": {
                "bool": {
                    "must": [{"multi_match": {"query": query.text, "fields": ["text", "text.std"], "operator": "and"}}],
                    "filter": [{"term": {"recalled": False}}, *_conversation_filter(query)],
                }
            },
            "sort": [{"created_at_ms": "desc"}, {"id": "desc"}],
            "version": True,
            "highlight": {
                "pre_tags": [PRE],
                "post_tags": [POST],
                "number_of_fragments": 0,
                "fields": {"text": {}, "text.std": {}},
            },
        }
        if after is not None:
            body["search_after"] = list(after)
        async with self._translated():
            found = await self._client.search(index=self.read_alias("messages"), body=body)
        hits = found["hits"]["hits"]
        page = [_hit(hit) for hit in hits[: query.limit]]
        cursor = encode_cursor(page[-1].doc.created_at_ms, page[-1].doc.id) if len(hits) > query.limit else None
        return Page(page, cursor)

    async def search_users(self, query: str, limit: int) -> list[UserDoc]:
        if not query.split():
            return []
        body = {
            "size": limit,
            "query": {
                "multi_match": {
                    "query": query,
                    "fields": ["username", "display_name"],
                    "type": "cross_fields",
                    "operator": "and",
                }
            },
            "sort": ["_score", {"id": "asc"}],
            "version": True,
        }
        async with self._translated():
            found = await self._client.search(index=self.read_alias("users"), body=body)
        return [
            UserDoc(
                id=hit["_source"]["id"],
                username=hit["_source"]["username"],
                display_name=hit["_source"]["display_name"],
                version=hit["_version"],
            )
            for hit in found["hits"]["hits"]
        ]

    # -- helpers --------------------------------------------------------------------------------------------------

    async def _write(self, kind: str, docs: Sequence[tuple[int, int, Mapping[str, Any]]]) -> None:
        """Write ``docs`` to every index behind ``kind``'s write alias: its write index through the alias, the
        others (an index being rebuilt) by name."""
        if not docs:
            return
        others = await self._written_by_name(kind)
        await self._bulk(self.write_alias(kind), docs, alias=True)
        for index in others:
            await self._bulk(index, docs, alias=False)

    async def _written_by_name(self, kind: str) -> tuple[str, ...]:
        """The indices behind ``kind``'s write alias but its write index, read again after ``alias_cache_s``."""
        known = self._written.get(kind)
        if known is not None and time.monotonic() < known[0]:
            return known[1]
        async with self._translated():
            found = await self._client.indices.get_alias(name=self.write_alias(kind))
        alias = self.write_alias(kind)
        others = tuple(sorted(name for name, spec in found.items() if not spec["aliases"][alias].get("is_write_index")))
        # An alias of one index writes to it whether it says so or not.
        others = others if len(found) > 1 else ()
        self._written[kind] = (time.monotonic() + self._alias_cache_s, others)
        return others

    async def _bulk(self, index: str, docs: Sequence[tuple[int, int, Mapping[str, Any]]], *, alias: bool) -> None:
        """Index ``docs`` (id, external version, source) in one bulk request to ``index``, an ``alias`` or an
        index's name; a version conflict means a newer version is there already. Items refused for a transient
        cause raise ``SearchUnavailable``, the rest ``RejectedDocument``."""
        if not docs:
            return
        actions = [
            {
                "_op_type": "index",
                "_index": index,
                "_id": str(doc_id),
                "version": version,
                "version_type": "external",
                "_source": source,
            }
            for doc_id, version, source in docs
        ]
        async with self._translated():
            _, failed = await async_bulk(
                self._client,
                actions,
                raise_on_error=False,
                chunk_size=len(actions),
                max_chunk_bytes=100 * 1024 * 1024,
                refresh="wait_for" if self._refresh else "false",
                # Never create an index by writing to an alias that is not there yet (before tidings migrate). An
                # index written by name is one create_next made.
                require_alias="true" if alias else "false",
            )
        assert isinstance(failed, list)
        errors = [item.get("index", item) for item in failed]
        errors = [error for error in errors if error.get("status") != 409]
        # 404: the write alias is missing (not migrated yet), which a retry after tidings migrate cures.
        if any(_transient(error.get("status")) or error.get("status") == 404 for error in errors):
            raise SearchUnavailable(f"search index refused {len(errors)} of {len(docs)} documents: {errors[0]}")
        if errors:
            raise RejectedDocument(f"search index refused {len(errors)} of {len(docs)} documents: {errors[0]}")

    async def _by_query(self, operation: str, body: Mapping[str, Any], counted: str, *, what: str) -> int:
        """Run ``update_by_query`` or ``delete_by_query`` as a background task over every index written (the one
        searched, and one being rebuilt), wait for it (bounded), and run it again while it reports failures or
        version conflicts; the total it ``counted``."""
        run = getattr(self._client, operation)
        total = 0
        for attempt in range(1, self._task_attempts + 1):
            async with self._translated():
                started = await run(
                    index=self.write_alias("messages"),
                    body=body,
                    params={"wait_for_completion": "false", "conflicts": "proceed", "refresh": "true"},
                )
            result = await self._await_task(started["task"], what)
            total += int(result.get(counted, 0))
            problems = result.get("failures") or []
            conflicts = int(result.get("version_conflicts", 0))
            if not problems and not conflicts:
                self._log.info("search task done", task=what, count=total, attempt=attempt)
                return total
            self._log.warning(
                "search task incomplete; running it again",
                task=what,
                failures=len(problems),
                version_conflicts=conflicts,
                attempt=attempt,
            )
        raise SearchUnavailable(f"{what}: still incomplete after {self._task_attempts} runs")

    async def _await_task(self, task_id: str, what: str) -> Mapping[str, Any]:
        """The response of a background task once it completed, polling with a growing pause; ``SearchUnavailable``
        past ``task_timeout_s`` or if the task failed."""
        pause = 0.05
        try:
            async with asyncio.timeout(self._task_timeout_s):
                while True:
                    async with self._translated():
                        status = await self._client.tasks.get(task_id=task_id)
                    if status.get("completed"):
                        break
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 1.0)
        except TimeoutError:
            raise SearchUnavailable(f"{what}: task {task_id} still running after {self._task_timeout_s} s") from None
        if "error" in status:
            raise SearchUnavailable(f"{what}: task {task_id} failed: {status['error']}")
        response: Mapping[str, Any] = status.get("response", {})
        return response

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """OpenSearch down, overloaded, slow or not migrated: ``SearchUnavailable``; a bad request stays a bug."""
        try:
            async with asyncio.timeout(self._timeout_s * 2):
                yield
        except OpenSearchConnectionError as exc:
            raise SearchUnavailable(f"search index unreachable: {exc.error}") from exc
        except NotFoundError as exc:
            raise SearchUnavailable(f"search index missing (run tidings migrate): {exc.error}") from exc
        except TransportError as exc:
            if _transient(exc.status_code):
                raise SearchUnavailable(f"search index: {exc.status_code} {exc.error}") from exc
            raise
        except TimeoutError as exc:
            raise SearchUnavailable("search index: timed out") from exc


def _transient(status: object) -> bool:
    return isinstance(status, int) and (status == 429 or status >= 500)


def _message_source(doc: MessageDoc) -> dict[str, Any]:
    return {
        "id": doc.id,
        "conversation_id": doc.conversation_id,
        "sender_id": doc.sender_id,
        "sender_name": doc.sender_name,
        "seq": doc.seq,
        "created_at_ms": doc.created_at_ms,
        "text": "" if doc.recalled else doc.text,
        "recalled": doc.recalled,
    }


def _user_source(doc: UserDoc) -> dict[str, Any]:
    return {"id": doc.id, "username": doc.username, "display_name": doc.display_name}


def _conversation_filter(query: MessageQuery) -> list[dict[str, Any]]:
    """The query's conversations as a filter clause; none for ``EVERYWHERE``."""
    if query.conversation_ids is EVERYWHERE:
        return []
    return [{"terms": {"conversation_id": list(query.conversation_ids)}}]


def _hit(hit: Mapping[str, Any]) -> MessageHit:
    source = hit["_source"]
    doc = MessageDoc(
        id=source["id"],
        conversation_id=source["conversation_id"],
        sender_id=source["sender_id"],
        sender_name=source["sender_name"],
        seq=source["seq"],
        created_at_ms=source["created_at_ms"],
        text=source["text"],
        recalled=source["recalled"],
        version=int(hit.get("_version", 0)),
    )
    spans = [span for marked in hit.get("highlight", {}).values() for span in _spans(marked[0], doc.text)]
    return MessageHit(doc, merge_spans(spans))


def _spans(marked: str, original: str) -> list[tuple[int, int]]:
    """The ``[start, end)`` code point spans the tags enclose in ``marked``; none if removing the tags does not give
    back ``original`` (a text that holds the tag characters itself)."""
    spans: list[tuple[int, int]] = []
    plain: list[str] = []
    start = 0
    for char in marked:
        if char == PRE:
            start = len(plain)
        elif char == POST:
            spans.append((start, len(plain)))
        else:
            plain.append(char)
    return spans if "".join(plain) == original else []
