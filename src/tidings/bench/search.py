"""``tidings bench search``: how fast the search index takes messages in and answers queries.

It generates messages (default 1,000,000) in mixed Latin and CJK text (Chinese and Japanese words, written without
spaces as those languages are) over 10,000 conversations, bulk-indexes them into a scratch namespace of the index
the config names (OpenSearch, or SQLite FTS5), and times it: documents per second, the index made searchable at the
end included. Then one searcher asks, one query at a time, for a word (Latin or CJK) in the conversations of one
member (50 of them, chosen at random each time), as ``GET /v1/search/messages`` does, and the latencies give the
median and the 99th percentile. The CPU time of the bench process (generating and sending) and of the OpenSearch
server are reported beside them: on a small machine they share the cores. The scratch indices are removed after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from opensearchpy import AsyncOpenSearch

from tidings import conf
from tidings.bench.record import append, commit, machine
from tidings.bench.system import ConfigOption, OutputOption, cpu_seconds, middleware_pids, percentile
from tidings.bootstrap import search_index
from tidings.pkg.conf import SearchConf
from tidings.search.model import MessageDoc, MessageQuery, SearchIndex, version_at

T = TypeVar("T")

CONVERSATIONS = 10_000
MEMBER_OF = 50
WARM_UP = 20
T0 = 1_767_225_600_000  # 2026-01-01 UTC

# Words the generated text is made of; a query asks for one of them.
_SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "po", "an", "el", "or", "un", "is", "ba"]
CJK_WORDS = [
    "你好",
    "世界",
    "今天",
    "天气",
    "朋友",
    "工作",
    "会议",
    "时间",
    "港口",
    "城市",
    "明天",
    "晚饭",
    "电影",
    "音乐",
    "学校",
    "老师",
    "问题",
    "办法",
    "公司",
    "项目",
    "东京",
    "大阪",
    "会社",
    "電車",
    "駅前",
    "映画",
    "写真",
    "料理",
    "こんにちは",
    "ありがとう",
    "おはよう",
    "さようなら",
    "すみません",
    "よろしく",
    "だいじょうぶ",
    "たのしい",
]


def latin_words(rng: random.Random, count: int = 3000) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def text_of(rng: random.Random, latin: list[str]) -> str:
    """Seven in ten messages Latin words with spaces, the rest CJK words run together (with a Latin word now and
    then, as people write)."""
    if rng.random() < 0.7:
        return " ".join(rng.choice(latin) for _ in range(rng.randint(4, 18)))
    parts = [rng.choice(CJK_WORDS) for _ in range(rng.randint(3, 10))]
    if rng.random() < 0.3:
        parts.insert(rng.randrange(len(parts)), f" {rng.choice(latin)} ")
    return "".join(parts)


def batches(count: int, size: int, seed: int) -> Iterator[list[MessageDoc]]:
    rng = random.Random(seed)  # noqa: S311 (seeded for the same messages on every run, not for secrets)
    latin = latin_words(rng)
    seqs = [0] * CONVERSATIONS
    batch: list[MessageDoc] = []
    for n in range(count):
        conversation = rng.randrange(CONVERSATIONS)
        seqs[conversation] += 1
        at = T0 + n * 10
        batch.append(
            MessageDoc(
                id=n + 1,
                conversation_id=conversation + 1,
                sender_id=rng.randrange(1, 5001),
                sender_name="",
                seq=seqs[conversation],
                created_at_ms=at,
                text=text_of(rng, latin),
                recalled=False,
                version=version_at(at),
            )
        )
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def run(settings: conf.Settings, count: int, batch: int, concurrency: int, queries: int) -> dict[str, Any]:
    namespace = f"bench_{uuid.uuid4().hex[:8]}_"
    scratch = tempfile.mkdtemp(prefix="tidings-bench-search-")
    embedded = {} if settings.search.kind == "opensearch" else {"url": str(Path(scratch) / "search.db")}
    search_conf = settings.search.model_copy(
        update={"namespace": namespace, "replicas": 0, "timeout_s": 60.0, **embedded}
    )
    index = search_index(search_conf)
    opensearch = middleware_pids().get("opensearch") if search_conf.kind == "opensearch" else None
    results: dict[str, Any] = {"kind": search_conf.kind, "load_before": os.getloadavg()[0]}
    await index.ensure()
    try:
        writes_before = await _writes(search_conf)
        with _cpu(opensearch) as used:
            started = time.perf_counter()
            await _index_all(index, count, batch, concurrency)
            if search_conf.kind == "opensearch":
                await _opensearch(search_conf.url, lambda client: client.indices.refresh(index=f"{namespace}messages"))
            results["index_s"] = time.perf_counter() - started
        results["index_client_cpu"], results["index_server_cpu"] = used
        results["bulk_requests"] = await _writes(search_conf) - writes_before
        with _cpu(opensearch) as used:
            latencies, hits = await _query(index, queries)
        results["query_client_cpu"], results["query_server_cpu"] = used
        if search_conf.kind == "opensearch":
            results["queries_served"] = await _opensearch(search_conf.url, lambda client: _queries(client, namespace))
    finally:
        await index.close()
        if search_conf.kind == "opensearch":
            await _opensearch(search_conf.url, lambda client: _drop(client, namespace))
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    return results | {
        "docs_per_s": count / results["index_s"],
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "hits_median": sorted(hits)[len(hits) // 2],
    }


async def _index_all(index: SearchIndex, count: int, batch: int, concurrency: int) -> None:
    """Every batch indexed, ``concurrency`` bulk requests in flight (and no more batches generated ahead)."""
    in_flight: set[asyncio.Task[None]] = set()
    for docs in batches(count, batch, seed=7):
        if len(in_flight) >= concurrency:
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        in_flight.add(asyncio.create_task(index.index_messages(docs)))
    for task in in_flight:
        await task


async def _query(index: SearchIndex, queries: int) -> tuple[list[float], list[int]]:
    """The latency and hit count of each query, one at a time, after a few that warm the caches up."""
    rng = random.Random(11)  # noqa: S311 (seeded for the same queries on every run, not for secrets)
    latin = latin_words(random.Random(7))  # noqa: S311 (the generator's words)
    latencies: list[float] = []
    hits: list[int] = []
    for n in range(queries + WARM_UP):
        word = rng.choice(CJK_WORDS) if n % 3 == 0 else rng.choice(latin)
        query = MessageQuery(word, rng.sample(range(1, CONVERSATIONS + 1), MEMBER_OF), limit=20)
        began = time.perf_counter()
        page = await index.search_messages(query)
        if n >= WARM_UP:
            latencies.append(time.perf_counter() - began)
            hits.append(len(page.items))
    return latencies, hits


@contextlib.contextmanager
def _cpu(server: int | None) -> Iterator[list[float]]:
    """CPU seconds this process and ``server`` used inside the block, as ``[client, server]`` once it ends."""
    used = [time.process_time(), cpu_seconds(server) if server else 0.0]
    yield used
    used[0] = time.process_time() - used[0]
    used[1] = (cpu_seconds(server) - used[1]) if server else 0.0


async def _opensearch(url: str, call: Callable[[AsyncOpenSearch], Awaitable[T]]) -> T:
    client = AsyncOpenSearch(hosts=[url], timeout=300)
    try:
        return await call(client)
    finally:
        await client.close()


async def _drop(client: AsyncOpenSearch, namespace: str) -> None:
    """The scratch namespace's indices and templates."""
    await client.indices.delete(index=f"{namespace}*", params={"expand_wildcards": "all"})
    templates = await client.indices.get_index_template(name=f"{namespace}*", params={"ignore": 404})
    for template in templates.get("index_templates", []):
        await client.indices.delete_index_template(name=template["name"])


async def _writes(search_conf: SearchConf) -> int:
    """The write requests the OpenSearch node has completed so far (its write pool runs one per bulk request to a
    shard: the scratch index has one); 0 for FTS5, which runs in the bench process."""
    if search_conf.kind != "opensearch":
        return 0

    async def completed(client: AsyncOpenSearch) -> int:
        stats = await client.nodes.stats(metric="thread_pool")
        return sum(int(node["thread_pool"]["write"]["completed"]) for node in stats["nodes"].values())

    return await _opensearch(search_conf.url, completed)


async def _queries(client: AsyncOpenSearch, namespace: str) -> int:
    """The queries the server ran on the scratch message index (one shard), the warm-up ones included."""
    stats = await client.indices.stats(index=f"{namespace}messages", metric="search")
    return int(stats["_all"]["primaries"]["search"]["query_total"])


def report(r: dict[str, Any], config: Path, count: int, batch: int, concurrency: int, queries: int) -> str:
    server = "OpenSearch (one node)" if r["kind"] == "opensearch" else "SQLite FTS5 (trigram)"
    cpu_server = f"; OpenSearch {r['index_server_cpu']:.1f} s" if r["kind"] == "opensearch" else " (FTS5 runs in it)"
    cpu_query_server = f"; OpenSearch {r['query_server_cpu']:.1f} s" if r["kind"] == "opensearch" else ""
    return "\n".join(
        [
            f"## search — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit()}",
            "",
            f"- machine: {machine()}; 1-minute load average {r['load_before']:.2f} before the run",
            f"- index: {server}, config `{config.name}`, a scratch namespace; {count:,} generated messages (7 in 10 "
            f"Latin, 3 in 10 Chinese/Japanese) in {CONVERSATIONS:,} conversations, bulk batches of {batch:,}, "
            f"{concurrency} in flight",
            f"- queries: one searcher, {queries:,} queries one after another, a word (1 in 3 CJK) in the "
            f"conversations of one member ({MEMBER_OF} at random), 20 hits a page; one run",
            "",
            "| measurement | value |",
            "|---|---:|",
            f"| indexing, made searchable at the end | {r['docs_per_s']:,.0f} docs/s ({r['index_s']:.1f} s) |",
            f"| query latency p50 | {r['p50_ms']:.1f} ms |",
            f"| query latency p99 | {r['p99_ms']:.1f} ms |",
            f"| hits per query (median, of at most 20) | {r['hits_median']} |",
            *_request_rows(r, count, queries),
            f"| CPU while indexing | bench client {r['index_client_cpu']:.1f} s{cpu_server} |",
            f"| CPU while querying | bench client {r['query_client_cpu']:.1f} s{cpu_query_server} |",
            "",
        ]
    )


def _request_rows(r: dict[str, Any], count: int, queries: int) -> list[str]:
    """The round trips, as the server counted them (FTS5 runs in the bench process: none)."""
    if r["kind"] != "opensearch":
        return ["| requests to a server | none: FTS5 runs in the bench process |"]
    return [
        f"| bulk requests per 1,000 documents (the server's count) | {r['bulk_requests'] * 1000 / count:.2f} |",
        f"| requests per query (the server's count) | {r['queries_served'] / (queries + WARM_UP):.2f} |",
    ]


def command(
    config: ConfigOption = Path("configs/stack.yaml"),
    messages: Annotated[int, typer.Option(help="Messages to generate and index.", min=1000)] = 1_000_000,
    batch: Annotated[int, typer.Option(help="Documents per bulk request.", min=1)] = 2000,
    concurrency: Annotated[int, typer.Option(help="Bulk requests in flight.", min=1)] = 2,
    queries: Annotated[int, typer.Option(help="Queries timed (medians and p99).", min=10)] = 2000,
    output: OutputOption = Path("docs/BENCHMARKS.md"),
) -> None:
    """Index throughput and query latency of the search index the config names; appended."""
    results = asyncio.run(run(conf.load(config), messages, batch, concurrency, queries))
    section = report(results, config, messages, batch, concurrency, queries)
    append(output, section)
    typer.echo(section)
