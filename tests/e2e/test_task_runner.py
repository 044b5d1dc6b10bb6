"""Real task processes on MariaDB: each scheduled time of a task runs once between two of them; one frozen (SIGSTOP)
past its lease, then thawed, has its next write refused by the fencing token while the other finishes the task;
retention killed (SIGKILL) midway leaves every history contiguous, and the next runner finishes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.contracts.chat_repos import conversation, new_id
from tests.e2e.conftest import drop_search_indices, fresh_database
from tests.e2e.fleet import ROOT, Fleet, port_env
from tidings import migrations
from tidings.bench.system import free_port
from tidings.service.account.tables import refresh_tokens
from tidings.service.chat.biz.model import Kind, Member, Role
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.message import Message
from tidings.service.chat.tables import messages
from tidings.task.tables import task_runs

TASK = "refresh-token-retention"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_database() as url:
        await migrations.upgrade(url)
        yield url


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database, poolclass=NullPool)
    yield engine
    await engine.dispose()


def task_fleet(tmp_path: Path, database: str, **settings: str) -> Fleet:
    env = {"TIDINGS_DATABASE__URL": database, "TIDINGS_TASK__TICK_S": "0.2"}
    env.update({f"TIDINGS_TASK__{key.upper()}": value for key, value in settings.items()})
    return Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env=env)


async def start_task_process(fleet: Fleet, name: str) -> int:
    """Another ``tidings serve task`` on its own port; the port of its ``/metrics``."""
    port = free_port()
    await fleet.start(name, ready_port=port, args=["serve", "task"], env=port_env("task", port))
    return port


async def metric(port: int, sample: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample + " ")]
    return sum(values)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        await asyncio.sleep(0.1)


async def tokens_left(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(refresh_tokens)) or 0)


async def test_two_processes_started_together_run_each_scheduled_time_once(tmp_path: Path, database: str) -> None:
    # Every two seconds (the sixth field: seconds).
    fleet = task_fleet(tmp_path, database, SCHEDULES=f'{{"{TASK}": "* * * * * */2"}}')
    try:
        ports = await asyncio.gather(start_task_process(fleet, "task-a"), start_task_process(fleet, "task-b"))
        started = time.time()
        await asyncio.sleep(10)
        sample = f'tidings_task_runs_total{{outcome="ok",task="{TASK}"}}'
        counts = [await metric(port, sample) for port in ports]
        elapsed = time.time() - started
    finally:
        await fleet.close()
        await drop_search_indices(fleet.namespace)  # a task process makes the search index ready too
    # One run per scheduled time between the two (give or take the times at the two ends of the window).
    assert elapsed / 2 - 2 <= sum(counts) <= elapsed / 2 + 2, counts


async def test_a_runner_frozen_past_its_lease_is_fenced_off_and_the_other_finishes_the_task(
    tmp_path: Path, database: str, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(refresh_tokens),
            [
                {"id": i, "user_id": 1, "family_id": i, "secret_hash": "h", "expires_at_ms": 1_000}
                for i in range(1, 401)
            ],
        )
    # Due at once (never ran), 40 batches a tenth of a second apart: about four seconds of work; a 2 s lease.
    fleet = task_fleet(
        tmp_path,
        database,
        LEASE_TTL_S="2",
        BATCH_SIZE="10",
        BATCH_PAUSE_S="0.1",
        REFRESH_TOKEN_GRACE_S="0",
    )
    try:
        first = await start_task_process(fleet, "task-a")
        await eventually(lambda: _between(engine, 1, 360), "the first runner has deleted some")
        fleet.pause("task-a")
        frozen_at = await tokens_left(engine)
        second = await start_task_process(fleet, "task-b")
        # The lease expires two seconds after its last renewal; the second process takes it and finishes.
        await eventually(lambda: _finished(engine), "the second runner finished the task", timeout_s=60)
        assert await tokens_left(engine) == 0
        holder = await _holder(engine)
        fleet.resume("task-a")
        sample = f'tidings_task_lease_lost_total{{task="{TASK}"}}'
        await eventually(lambda: _positive(metric(first, sample)), "the thawed runner's write was refused")
        assert await metric(second, sample) == 0
        assert await _holder(engine) == holder  # the new holder's record stands
        assert await metric(second, f'tidings_task_runs_total{{outcome="ok",task="{TASK}"}}') == 1
        assert 0 < frozen_at < 400
    finally:
        await fleet.close()
        await drop_search_indices(fleet.namespace)  # a task process makes the search index ready too


async def _between(engine: AsyncEngine, low: int, high: int) -> bool:
    return low <= await tokens_left(engine) <= high


async def _positive(value: Awaitable[float]) -> bool:
    return await value > 0


async def _finished(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        outcome = await conn.scalar(select(task_runs.c.outcome).where(task_runs.c.name == TASK))
    return outcome == "ok"


async def _holder(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str(await conn.scalar(select(task_runs.c.holder).where(task_runs.c.name == TASK)))


async def test_retention_killed_midway_leaves_every_history_contiguous_and_the_next_run_finishes(
    tmp_path: Path, database: str, engine: AsyncEngine
) -> None:
    now = int(time.time() * 1000)
    old, recent = now - 10 * 86_400_000, now - 3_600_000
    repo, store = SQLConversationRepo(engine), SQLMessageRepo(engine)
    chats = [conversation(Kind.GROUP, members=1) for _ in range(20)]
    for chat in chats:
        await repo.create(chat, [Member(chat.id, 1, Role.OWNER, 0, 0)])
        await store.persist(
            [
                Message(
                    new_id(),
                    chat.id,
                    seq,
                    1,
                    f"{chat.id}-{seq}",
                    "old" if seq <= 30 else "new",
                    old if seq <= 30 else recent,
                )
                for seq in range(1, 36)
            ]
        )
    fleet = task_fleet(
        tmp_path,
        database,
        SCHEDULES=f'{{"{TASK}": "0 0 1 1 *", "retention": "* * * * *"}}',
        MESSAGE_RETENTION_GROUP_DAYS="3",
        LEASE_TTL_S="2",
        BATCH_SIZE="5",
        BATCH_PAUSE_S="0.05",
    )
    try:
        await start_task_process(fleet, "task-a")
        await eventually(lambda: _messages_between(engine, 150 + 100, 700 - 50), "retention under way")
        await fleet.kill("task-a")
        for chat in chats:
            left = await _seqs(engine, chat.id)
            assert left == list(range(left[0], 36)), f"history of {chat.id} has a hole: {left}"
        await start_task_process(fleet, "task-b")  # takes the task over once the dead runner's lease expires
        await eventually(lambda: _messages_between(engine, 100, 100), "the next run finished", timeout_s=60)
        for chat in chats:
            assert await _seqs(engine, chat.id) == list(range(31, 36))
    finally:
        await fleet.close()
        await drop_search_indices(fleet.namespace)


async def _seqs(engine: AsyncEngine, conversation_id: int) -> list[int]:
    async with engine.connect() as conn:
        return list(
            await conn.scalars(
                select(messages.c.seq).where(messages.c.conversation_id == conversation_id).order_by(messages.c.seq)
            )
        )


async def _messages_between(engine: AsyncEngine, low: int, high: int) -> bool:
    async with engine.connect() as conn:
        count = int(await conn.scalar(select(func.count()).select_from(messages)) or 0)
    return low <= count <= high
