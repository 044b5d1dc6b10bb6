"""What a benchmark counts besides time: round trips to the middleware, from both ends.

Each Tidings process counts the requests it sends to MySQL, Redis and Kafka (``tidings_middleware_round_trips``,
read from its ``/metrics``); the servers count what they executed (MariaDB ``SHOW GLOBAL STATUS``, Redis
``INFO commandstats``). On a small machine these round trips, not Python, decide how fast the system can go, so a
benchmark reports both per message. The servers' counters are global: other clients of the same servers
(a test run beside the benchmark) show up in them, which is one more reason to benchmark on a quiet machine.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import httpx
import redis.asyncio as redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.conf import Settings
from tidings.pkg import db

ROUND_TRIPS = "tidings_middleware_round_trips"
# The MariaDB status counters a report shows, with the names it shows them under.
MARIADB_STATUS = {
    "Questions": "statements",
    "Com_commit": "commits",
    "Com_rollback": "rollbacks",
    "Com_insert": "inserts",
    "Com_update": "updates",
    "Com_select": "selects",
    "Innodb_data_fsyncs": "fsyncs",
}


async def round_trips(metrics_urls: dict[str, str]) -> dict[str, float]:
    """The round trips every process has made so far, by ``"<process> <system>"``."""
    total: defaultdict[str, float] = defaultdict(float)
    async with httpx.AsyncClient(timeout=5) as http:
        for process, url in metrics_urls.items():
            answer = await http.get(url)
            answer.raise_for_status()
            for family in text_string_to_metric_families(answer.text):
                if family.name != ROUND_TRIPS:
                    continue
                for sample in family.samples:
                    if sample.name == f"{ROUND_TRIPS}_total":
                        total[f"{process} {sample.labels['system']}"] += sample.value
    return dict(total)


async def server_counts(settings: Settings) -> dict[str, float]:
    """The middleware servers' own counters: ``mariadb <name>`` and ``redis <command>`` (absent when unused)."""
    counts: dict[str, float] = {}
    if db.backend(settings.database.url) == "mysql":
        counts.update(await _mariadb_status(settings.database.url, "mariadb"))
    if settings.database.replica_url:
        # The read replica's own (beside the client side's ``mysql_replica`` round trips).
        counts.update(await _mariadb_status(settings.database.replica_url, "mariadb replica"))
    if settings.cache.url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(settings.cache.url, socket_timeout=5)
        try:
            stats = await client.info("commandstats")
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        for name, values in stats.items():
            counts[f"redis {name.removeprefix('cmdstat_')}"] = float(values["calls"])
    return counts


async def _mariadb_status(url: str, prefix: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SHOW GLOBAL STATUS"))
            for name, value in rows:
                if name in MARIADB_STATUS:
                    counts[f"{prefix} {MARIADB_STATUS[name]}"] = float(value)
    finally:
        await engine.dispose()
    return counts


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """``after - before`` for every key that moved."""
    return {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}
