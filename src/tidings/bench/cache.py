"""``tidings bench cache``: what the cache layer buys, measured on the real Redis and MariaDB.

(a) one 100-key operation, naive (100 round trips) vs pipelined (MGET / one pipeline); (b) a profile read that
hits the cache vs one from MariaDB; (c) 1,000 concurrent requests for one cold key: how many loads reached the
database (singleflight: must be 1); (d) what ``GET /v1/sync`` asks of chat for a user in 200 conversations, cold vs
warm cache: ``GET /v1/sync`` itself, through the bff of a system the bench starts (``tidings serve`` per module),
and chat's use cases behind it run in this process: the conversation list (member lists cached) and the
conversation states (max seq and read seq: heads and read marks cached), the states also straight from MariaDB.

It works in a scratch database and a scratch key prefix, both removed afterwards, and
appends the medians and ratios of one run, the config, the commit, the date and the machine to a Markdown file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import redis.asyncio as redis
import typer
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tidings import conf, migrations
from tidings.bench import system
from tidings.bench.record import append, commit, machine
from tidings.pkg import db, log
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, RedisStore
from tidings.pkg.cache.kit import CacheKit
from tidings.pkg.clock import SystemClock
from tidings.pkg.conf import DatabaseConf
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.biz.user import Account
from tidings.service.account.data.repos import SQLBlockRepo, SQLUserRepo
from tidings.service.account.user import User
from tidings.service.account.wire import profile_cache
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.conversations import Conversations
from tidings.service.chat.biz.model import Conversation, Kind, Member, Role
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.data.conversations import CachedConversationRepo, SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo


async def median_s(
    operation: Callable[[], Awaitable[Any]], rounds: int, *, before: Callable[[], Awaitable[Any]] | None = None
) -> float:
    """The median time of ``operation``; ``before`` runs ahead of each round, untimed (emptying a cache)."""
    await operation()  # connections open, code paths warm
    samples = []
    for _ in range(rounds):
        if before is not None:
            await before()
        started = time.perf_counter()
        await operation()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _id(low: int, high: int) -> int:
    """A random id in [low, high): scratch rows never collide with each other or with earlier runs."""
    return low + secrets.randbelow(high - low)


class NoUsers:
    async def existing(self, user_ids: Sequence[int]) -> set[int]:
        return set(user_ids)

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        return [False] * len(pairs)


async def run(redis_url: str, mysql_url: str, rounds: int, conversations: int) -> dict[str, Any]:  # noqa: PLR0915 (one scenario after another reads best in order)
    prefix = f"bench.cache.{uuid.uuid4().hex[:8]}"
    database = f"tidings_bench_{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    server = create_async_engine(mysql_url)
    async with server.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
    url = f"{mysql_url.rstrip('/')}/{database}"
    # Everything here is CPU on one machine: what else runs on it moves the numbers, so the report says it.
    results: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    engine = None
    try:
        await migrations.upgrade(url)
        engine = db.create_engine(DatabaseConf(url=url, pool_size=20))
        store = RedisStore(client, batch_size=256, timeout_s=5)
        kit = CacheKit(
            store,
            LocalInvalidator(store, delay_s=1.0),
            CacheMetrics(CollectorRegistry(), "bench"),
            CachePolicy(ttl_s=600, fill_deadline_s=5),
        )

        # (a) 100 keys: 100 GETs one after another vs one MGET; 100 SETs vs one script call (RedisStore's).
        keys = [f"{prefix}:k:{n}" for n in range(100)]
        await store.set_many([(key, b"x" * 200, 600) for key in keys])

        async def naive_get() -> None:
            for key in keys:
                await client.get(key)

        async def naive_set() -> None:
            for key in keys:
                await client.set(key, b"x" * 200, px=600_000)

        results["get_naive_ms"] = await median_s(naive_get, rounds) * 1000
        results["get_pipelined_ms"] = await median_s(lambda: store.get_many(keys), rounds) * 1000
        results["set_naive_ms"] = await median_s(naive_set, rounds) * 1000
        results["set_pipelined_ms"] = (
            await median_s(lambda: store.set_many([(key, b"x" * 200, 600) for key in keys]), rounds) * 1000
        )

        # (b) one profile: cache hit vs MariaDB (the same use case without a cache).
        users = SQLUserRepo(engine)
        user_id = _id(10**12, 10**15)
        await users.create(Account(User(user_id, f"u{user_id}", "Bench", "", "", 1), "x", False, 0))
        cached = Profiles(users, SQLBlockRepo(engine), SystemClock(), profile_cache(kit, prefix))
        direct = Profiles(users, SQLBlockRepo(engine), SystemClock())
        results["profile_hit_ms"] = await median_s(lambda: cached.get(user_id), rounds * 5) * 1000
        results["profile_mariadb_ms"] = await median_s(lambda: direct.get(user_id), rounds * 5) * 1000

        # (c) 1,000 concurrent requests for one cold key.
        loads = 0

        class CountingUsers(SQLUserRepo):
            async def get(self, wanted: int) -> Account | None:
                nonlocal loads
                loads += 1
                return await super().get(wanted)

        cold_id = _id(10**12, 10**15)
        await users.create(Account(User(cold_id, f"u{cold_id}", "Cold", "", "", 1), "x", False, 0))
        herd = Profiles(CountingUsers(engine), SQLBlockRepo(engine), SystemClock(), profile_cache(kit, prefix))
        started = time.perf_counter()
        await asyncio.gather(*(herd.get(cold_id) for _ in range(1000)))
        results["herd_ms"] = (time.perf_counter() - started) * 1000
        results["herd_loads"] = loads

        # (d) what sync asks of chat for a user in N conversations: the list and the states, cold vs warm.
        caches = chat_caches(kit, prefix)
        repo = CachedConversationRepo(engine, caches)
        me = _id(10**12, 10**15)
        now = SystemClock().now_ms()
        ids = []
        for n in range(conversations):
            cid = _id(10**15, 10**17)
            ids.append(cid)
            others = [_id(10**12, 10**15) for _ in range(4)]
            await repo.create(
                Conversation(cid, Kind.GROUP, f"g{n}", me, 0, None, now, now + n, 5),
                [Member(cid, user, Role.OWNER if user == me else Role.MEMBER, 0, now) for user in [me, *others]],
            )
        chats = Conversations(
            repo,
            SQLMessageRepo(engine),
            NoUsers(),
            Access(repo, NoUsers()),
            _NoIds(),
            SystemClock(),
            log.get("bench.conversations"),
            caches.members,
        )
        member_keys = [caches.members.key(cid) for cid in ids]

        results["sync_cold_ms"] = (
            await median_s(
                lambda: chats.list_page(me, conversations, None),
                max(5, rounds // 10),
                before=lambda: store.delete_many(member_keys),
            )
            * 1000
        )
        results["sync_warm_ms"] = (
            await median_s(lambda: chats.list_page(me, conversations, None), max(5, rounds // 10)) * 1000
        )
        state_keys = [caches.heads.key(cid) for cid in ids] + [caches.reads.key((cid, me)) for cid in ids]

        results["states_cold_ms"] = (
            await median_s(lambda: chats.states(me, ids), rounds, before=lambda: store.delete_many(state_keys)) * 1000
        )
        results["states_warm_ms"] = await median_s(lambda: chats.states(me, ids), rounds) * 1000
        uncached = SQLConversationRepo(engine)
        results["states_mariadb_ms"] = await median_s(lambda: uncached.states(me, ids), rounds) * 1000
    finally:
        keys_left = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys_left:
            await client.delete(*keys_left)
        await client.aclose()
        if engine is not None:
            await engine.dispose()
        async with server.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        await server.dispose()
    return results


async def sync_over_http(config: Path, rounds: int, conversations: int) -> dict[str, float]:
    """(d) ``GET /v1/sync`` through the bff of a system this bench starts (``tidings serve`` per module with
    ``config``, on free ports and bus names of its own), for a user in ``conversations`` groups: cold (the keys
    sync reads from the cache deleted, untimed, before each round: the member lists and the user's profile) vs
    warm."""
    settings = conf.load(config)
    client = redis.Redis.from_url(settings.cache.url, socket_timeout=5, socket_connect_timeout=5)
    tag = uuid.uuid4().hex[:6]
    try:
        async with (
            system.start(config, system.modules(system.Shape.serve, config)) as started,
            httpx.AsyncClient(base_url=started.url, timeout=30) as http,
        ):

            async def register(name: str) -> tuple[str, dict[str, str]]:
                answer = await http.post(
                    "/v1/auth/register", json={"username": f"{name}{tag}", "password": "bench password 1"}
                )
                answer.raise_for_status()
                body = answer.json()
                return str(body["user"]["id"]), {"Authorization": f"Bearer {body['access_token']}"}

            me, headers = await register("syncer")
            peer, _ = await register("peer")
            made: list[str] = []
            for n in range(conversations):
                answer = await http.post(
                    "/v1/conversations",
                    json={"kind": "group", "title": f"g{n}", "member_ids": [peer]},
                    headers=headers,
                )
                answer.raise_for_status()
                made.append(str(answer.json()["id"]))
            cached = [f"chat:{{{cid}}}:members" for cid in made] + [f"account:profile:{me}"]

            async def sync() -> None:
                answer = await http.get("/v1/sync", headers=headers)
                answer.raise_for_status()
                if len(answer.json()["conversations"]) != conversations:
                    raise RuntimeError(f"sync answered {len(answer.json()['conversations'])} conversations")

            async def empty() -> None:
                await client.delete(*cached)

            return {
                "sync_http_cold_ms": await median_s(sync, rounds, before=empty) * 1000,
                "sync_http_warm_ms": await median_s(sync, rounds) * 1000,
            }
    finally:
        await client.aclose()


class _NoIds:
    def next_id(self) -> int:
        return _id(10**15, 10**17)


def report(r: dict[str, Any], redis_url: str, mysql_url: str, rounds: int, conversations: int, config: Path) -> str:
    mysql_host = mysql_url.rsplit("@", maxsplit=1)[-1]
    return "\n".join(
        [
            f"## cache — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit()}",
            "",
            f"- machine: {machine()}; 1-minute load average {r['load_before']:.2f} before the run",
            f"- system: Redis {redis_url} and MariaDB {mysql_host} on loopback, one client process; medians of "
            f"{rounds} rounds (profile reads: {rounds * 5}; conversation list and `GET /v1/sync`: "
            f"{max(5, rounds // 10)}) from one run; cold = every key of the read deleted (untimed) before each round",
            f"- `GET /v1/sync`: `tidings serve` per module with `{config.name}`, started by the bench on free ports "
            "and bus names of its own; the HTTP client in the bench process",
            "",
            "| measurement | naive / cold | cached / pipelined | ratio |",
            "|---|---:|---:|---:|",
            f"| (a) GET 100 keys: 100 GETs vs 1 MGET | {r['get_naive_ms']:.2f} ms | {r['get_pipelined_ms']:.2f} ms "
            f"| {r['get_naive_ms'] / r['get_pipelined_ms']:.1f}x |",
            f"| (a) SET 100 keys, a TTL each: 100 SETs vs 1 script call | {r['set_naive_ms']:.2f} ms "
            f"| {r['set_pipelined_ms']:.2f} ms | {r['set_naive_ms'] / r['set_pipelined_ms']:.1f}x |",
            f"| (b) profile read: MariaDB vs cache hit | {r['profile_mariadb_ms']:.3f} ms "
            f"| {r['profile_hit_ms']:.3f} ms | {r['profile_mariadb_ms'] / r['profile_hit_ms']:.1f}x |",
            f"| (d) conversation list of {conversations} conversations: member lists cold vs warm "
            f"| {r['sync_cold_ms']:.2f} ms | {r['sync_warm_ms']:.2f} ms "
            f"| {r['sync_cold_ms'] / r['sync_warm_ms']:.1f}x |",
            f"| (d) `GET /v1/sync` over HTTP, {conversations} conversations: cold vs warm cache "
            f"| {r['sync_http_cold_ms']:.2f} ms | {r['sync_http_warm_ms']:.2f} ms "
            f"| {r['sync_http_cold_ms'] / r['sync_http_warm_ms']:.1f}x |",
            f"| (d) conversation states of {conversations} conversations: cold vs warm cache "
            f"| {r['states_cold_ms']:.2f} ms | {r['states_warm_ms']:.2f} ms "
            f"| {r['states_cold_ms'] / r['states_warm_ms']:.1f}x |",
            f"| (d) conversation states of {conversations} conversations: MariaDB (one query) vs warm cache "
            f"| {r['states_mariadb_ms']:.2f} ms | {r['states_warm_ms']:.2f} ms "
            f"| {r['states_mariadb_ms'] / r['states_warm_ms']:.1f}x |",
            "",
            f"- (c) 1,000 concurrent requests for one cold profile: **{r['herd_loads']} load(s)** from MariaDB, "
            f"all answered in {r['herd_ms']:.1f} ms",
            "",
        ]
    )


def command(
    redis_url: Annotated[str, typer.Option(help="The Redis to measure (keys under a scratch prefix).")] = (
        "redis://127.0.0.1:6379/15"
    ),
    mysql_url: Annotated[str, typer.Option(help="MariaDB server URL; a scratch database is created and dropped.")] = (
        "mysql+aiomysql://tidings:tidings@127.0.0.1:3306"
    ),
    rounds: Annotated[int, typer.Option(help="Rounds per measurement (medians).", min=5)] = 200,
    conversations: Annotated[int, typer.Option(help="Conversations of the sync user in (d).", min=1)] = 200,
    output: Annotated[Path, typer.Option(help="Markdown file the results are appended to.")] = Path(
        "docs/BENCHMARKS.md"
    ),
    config: Annotated[Path, typer.Option(help="Config of the system started for GET /v1/sync.")] = Path(
        "configs/stack.yaml"
    ),
) -> None:
    """Pipelined vs naive Redis, cache hit vs MariaDB, singleflight under a herd, sync cold vs warm; appended."""
    results = asyncio.run(run(redis_url, mysql_url, rounds, conversations))
    results |= asyncio.run(sync_over_http(config, max(5, rounds // 10), conversations))
    section = report(results, redis_url, mysql_url, rounds, conversations, config)
    append(output, section)
    typer.echo(section)


cache = command
