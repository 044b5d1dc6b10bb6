"""End-to-end fixtures: the system as real processes, reached only through its public HTTP API.

``fleet`` runs in two shapes: ``dev`` (``tidings dev``: every module in one process on the embedded adapters, as
``make run``) and ``stack`` (each module its own process on MariaDB, Redis and Kafka, as deployed); the messaging
and real-time suites add a third, ``wide`` (the stack shape with two instances of every module).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.e2e.client import Client
from tests.e2e.fleet import ROOT, Fleet, port_env
from tests.e2e.opensearch_node import OpenSearchNode
from tidings.bench.system import free_port

MYSQL_SERVER = "mysql+aiomysql://tidings:tidings@127.0.0.1:3306"
# The primary of scripts/mariadb-replica (configs/cluster.yaml) and its replica, where what it writes arrives.
CLUSTER_PRIMARY = "mysql+aiomysql://tidings:tidings@127.0.0.1:3316"
CLUSTER_REPLICA = "mysql+aiomysql://tidings:tidings@127.0.0.1:3317"
OPENSEARCH_URL = "http://127.0.0.1:9200"


@asynccontextmanager
async def fresh_database(on: str = MYSQL_SERVER) -> AsyncIterator[str]:
    """A new, empty MariaDB database for one test on server ``on``, dropped afterwards (on a primary, the replica
    makes and drops it too)."""
    name = f"tidings_test_{uuid.uuid4().hex[:10]}"
    # No pool: a test may restart MariaDB between creating and dropping the database.
    server = create_async_engine(on, poolclass=NullPool)
    async with server.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{on}/{name}"
    finally:
        async with server.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        await server.dispose()


async def stack_fleet(tmp_path: Path, database_url: str, env: dict[str, str] | None = None) -> Fleet:
    """The stack shape's account, chat, job and bff on ``database_url``; ``env`` overrides more settings."""
    fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env={"TIDINGS_DATABASE__URL": database_url, **(env or {})})
    # One after another: the first applies the migrations, the others find them applied.
    for module in ("account", "chat", "job", "bff"):
        await fleet.start(module)
    return fleet


@dataclass(frozen=True)
class Instance:
    """Where clients reach one bff instance."""

    http_url: str
    ws_url: str
    grpc_address: str


# The wide shape's second instances listen on free ports; the first on the config's (the bff's public ones: 8080 and
# gRPC 9080, where ``Client()`` goes).
WIDE_MODULES = ("account", "chat", "job", "task", "bff")
_GRPC = {"account": 9081, "chat": 9082}


async def wide_fleet(
    tmp_path: Path, database_url: str, env: dict[str, str] | None = None
) -> tuple[Fleet, list[Instance]]:
    """The stack shape two-wide: two instances each of account, chat, job, task and bff, each its own process;
    every module dials both instances of account and chat (calls spread round-robin). Answers the fleet (the
    second instances named ``<module>2``) and its two bff instances."""
    second = {m: (free_port(), free_port() if m in (*_GRPC, "bff") else None) for m in WIDE_MODULES}
    dial = {
        f"TIDINGS_MODULES__{m.upper()}__DIAL": f"ipv4:127.0.0.1:{port},127.0.0.1:{second[m][1]}"
        for m, port in _GRPC.items()
    }
    fleet_env = {"TIDINGS_DATABASE__URL": database_url, **dial, **(env or {})}
    fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env=fleet_env)
    try:
        # One after another: the first applies the migrations, the others find them applied.
        for module in WIDE_MODULES:
            await fleet.start(module)
            http, grpc = second[module]
            await fleet.start(f"{module}2", ready_port=http, args=["serve", module], env=port_env(module, http, grpc))
    except BaseException:
        await fleet.close()
        raise
    http, grpc = second["bff"]
    instances = [
        Instance("http://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/ws", "127.0.0.1:9080"),
        Instance(f"http://127.0.0.1:{http}", f"ws://127.0.0.1:{http}/v1/ws", f"127.0.0.1:{grpc}"),
    ]
    return fleet, instances


@pytest.fixture(params=["dev", "stack"])
async def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fleet]:
    """The system in a shape of ``params``; a module adds ``wide`` (``wide_fleet``) with ``pytest.mark.parametrize(
    "fleet", [...], indirect=True)``."""
    if request.param == "dev":
        fleet = Fleet(ROOT / "configs" / "dev.yaml", tmp_path)
        await fleet.start("dev")
        for port in (8081, 8082, 8083):
            fleet.processes["dev"].ready_port = port
            await fleet.wait_ready("dev")
        try:
            yield fleet
        finally:
            await fleet.close()
        return
    async with fresh_database() as database_url:
        if request.param == "wide":
            fleet, _ = await wide_fleet(tmp_path, database_url)
        else:
            fleet = await stack_fleet(tmp_path, database_url)
        try:
            yield fleet
        finally:
            await fleet.close()
            await drop_search_indices(fleet.namespace)


async def drop_search_indices(namespace: str) -> None:
    """Delete a stack fleet's search indices and index templates from the shared OpenSearch."""
    async with httpx.AsyncClient(base_url=OPENSEARCH_URL, timeout=30) as client:
        await client.delete(f"/{namespace}*", params={"expand_wildcards": "all"})
        await client.delete(f"/_index_template/{namespace}*")


@pytest.fixture
async def opensearch_node(tmp_path: Path) -> AsyncIterator[OpenSearchNode]:
    """A private OpenSearch node, started; always stopped and removed at the end, its log kept in ``tmp_path``."""
    node = OpenSearchNode(tmp_path)
    try:
        await node.start()
        yield node
    finally:
        await node.close()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = Client()
    yield client
    await client.close()
