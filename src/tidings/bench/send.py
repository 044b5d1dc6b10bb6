"""``tidings bench send``: how many messages the bff accepts per second, how fast, and at what CPU cost.

N users in M conversations (direct pairs and groups) send through the bff's REST API for T seconds, a fixed number
of sends always in flight (closed loop), each with a fresh ``client_msg_id``. Measured: accepted msgs/s, p50/p99 send
latency, the time until every accepted message is persisted (``GET /v1/conversations/{id}`` ``max_seq`` reaches the
highest acknowledged seq of each conversation), and the CPU seconds per 1,000 messages of every process, from
``/proc/<pid>/stat`` before the first send and after the last message is persisted. The system is ``tidings dev``
(embedded config), one ``tidings serve <module>`` per module (a config on the real middleware), or ``--url``.
The results, the config, the commit, the date and the machine are appended to a Markdown file.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from tidings.bench.record import append, commit, machine
from tidings.bench.system import Shape, cpu_seconds, describe, modules, percentile, start

BENCH_CLIENT = "bench client"  # this process: it shares the machine's cores with the system it measures
GROUP_MAX = 1000  # chat's create limit on listed members


@dataclass(frozen=True)
class Config:
    users: int
    conversations: int
    groups: int
    group_size: int
    duration_s: float
    concurrency: int
    persist_timeout_s: float
    url: str | None
    pids: dict[str, int]
    config: Path
    shape: Shape
    output: Path


@dataclass(frozen=True)
class User:
    id: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str  # "direct" or "group"
    members: tuple[User, ...]


@dataclass
class Tally:
    """What the senders saw: one latency per accepted send and the highest acknowledged seq per conversation."""

    latencies: list[float] = field(default_factory=list)
    highest_seq: dict[str, int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    last_ack: float = 0.0


def plan(users: int, conversations: int, groups: int, group_size: int) -> list[tuple[str, list[int]]]:
    """Who is in which conversation, as user indexes: direct pairs first, then groups, members dealt round-robin
    so every user lands in some conversation whenever the seats allow it. Direct pairs never repeat."""
    if groups > conversations:
        raise typer.BadParameter(f"--groups {groups} exceeds --conversations {conversations}")
    if not 2 <= group_size <= min(users, GROUP_MAX + 1):
        raise typer.BadParameter(f"--group-size must be between 2 and {min(users, GROUP_MAX + 1)}")
    directs = conversations - groups
    if directs > users * (users - 1) // 2:
        raise typer.BadParameter(f"{users} users make at most {users * (users - 1) // 2} direct pairs")
    layout: list[tuple[str, list[int]]] = []
    pairs: set[tuple[int, int]] = set()
    cursor = 0
    for _ in range(directs):
        a, b = next(
            (a, b)
            for a in (n % users for n in range(cursor, cursor + users))
            for b in (m % users for m in range(a + 1, a + users))
            if (min(a, b), max(a, b)) not in pairs
        )
        pairs.add((min(a, b), max(a, b)))
        layout.append(("direct", [a, b]))
        cursor += 2
    for _ in range(groups):
        layout.append(("group", [(cursor + k) % users for k in range(group_size)]))
        cursor += group_size
    return layout


class Workload:
    def __init__(self, http: httpx.AsyncClient, config: Config) -> None:
        self._http = http
        self._config = config
        self._setup = asyncio.Semaphore(config.concurrency)
        # Sign-up hashes a password (argon2id, CPU-bound by design): a few at a time, or they queue past deadlines.
        self._signups = asyncio.Semaphore(2 * (os.cpu_count() or 1))

    async def register(self) -> list[User]:
        tag = uuid.uuid4().hex[:6]

        async def one(n: int) -> User:
            async with self._signups:
                answer = await self._http.post(
                    "/v1/auth/register", json={"username": f"s{tag}_{n}", "password": "bench password 1"}
                )
            answer.raise_for_status()
            body = answer.json()
            return User(str(body["user"]["id"]), {"Authorization": f"Bearer {body['access_token']}"})

        return list(await asyncio.gather(*(one(n) for n in range(self._config.users))))

    async def open(self, users: list[User]) -> list[Conversation]:
        layout = plan(self._config.users, self._config.conversations, self._config.groups, self._config.group_size)

        async def one(kind: str, indexes: list[int]) -> Conversation:
            members = tuple(users[i] for i in indexes)
            body: dict[str, Any] = (
                {"kind": "direct", "peer_id": members[1].id}
                if kind == "direct"
                else {"kind": "group", "title": "bench", "member_ids": [m.id for m in members[1:]]}
            )
            async with self._setup:
                answer = await self._http.post("/v1/conversations", json=body, headers=members[0].headers)
            answer.raise_for_status()
            return Conversation(str(answer.json()["id"]), kind, members)

        return list(await asyncio.gather(*(one(kind, indexes) for kind, indexes in layout)))

    async def send(self, seats: list[tuple[User, Conversation]], tally: Tally) -> float:
        """``concurrency`` senders, each sending from a random seat until the time is up; answers the seconds."""
        rng = random.Random(7)  # noqa: S311 - picks workload, not secrets
        begin = time.monotonic()
        stop = begin + self._config.duration_s

        async def sender() -> None:
            while time.monotonic() < stop:
                user, conversation = rng.choice(seats)
                body = {"client_msg_id": uuid.uuid4().hex, "text": "bench send"}
                started = time.monotonic()
                try:
                    answer = await self._http.post(
                        f"/v1/conversations/{conversation.id}/messages", json=body, headers=user.headers
                    )
                except httpx.HTTPError as exc:
                    tally.errors[type(exc).__name__] += 1
                    continue
                finished = time.monotonic()
                if answer.status_code != 201:
                    tally.errors[f"HTTP {answer.status_code}"] += 1
                    continue
                tally.latencies.append(finished - started)
                tally.last_ack = max(tally.last_ack, finished)
                seq = int(answer.json()["message"]["seq"])
                if seq > tally.highest_seq.get(conversation.id, 0):
                    tally.highest_seq[conversation.id] = seq

        await asyncio.gather(*(sender() for _ in range(self._config.concurrency)))
        return time.monotonic() - begin

    async def persisted(self, conversations: list[Conversation], tally: Tally) -> tuple[float | None, int]:
        """Poll every conversation until its ``max_seq`` reaches the highest acknowledged seq; answers the moment
        the last one did (monotonic, None on timeout) and how many conversations were still behind."""
        pending = {c.id: c for c in conversations if c.id in tally.highest_seq}
        deadline = time.monotonic() + self._config.persist_timeout_s

        async def caught_up(conversation: Conversation) -> bool:
            async with self._setup:
                answer = await self._http.get(
                    f"/v1/conversations/{conversation.id}", headers=conversation.members[0].headers
                )
            answer.raise_for_status()
            return int(answer.json()["max_seq"]) >= tally.highest_seq[conversation.id]

        while pending:
            done = await asyncio.gather(*(caught_up(c) for c in pending.values()))
            now = time.monotonic()
            for conversation, ok in zip(list(pending.values()), done, strict=True):
                if ok:
                    del pending[conversation.id]
            if not pending:
                return now, 0
            if now > deadline:
                return None, len(pending)
            await asyncio.sleep(0.05)
        return time.monotonic(), 0


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


async def run(config: Config) -> dict[str, Any]:
    """The whole benchmark; answers the measured numbers."""
    if config.url is not None:
        return await measure(config.url, config.pids, config)
    async with start(config.config, modules(config.shape, config.config)) as system:
        return await measure(system.url, system.pids, config)


async def measure(url: str, pids: dict[str, int], config: Config) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        workload = Workload(http, config)
        users = await workload.register()
        conversations = await workload.open(users)
        seats = [(member, c) for c in conversations for member in c.members]
        tally = Tally()
        processes = {**pids, BENCH_CLIENT: os.getpid()}
        cpu_before = _cpu(processes)
        began = time.monotonic()
        send_seconds = await workload.send(seats, tally)
        persisted_at, behind = await workload.persisted(conversations, tally)
        cpu_after = _cpu(processes)
    accepted = len(tally.latencies)
    return {
        "users": len(users),
        "directs": sum(1 for c in conversations if c.kind == "direct"),
        "groups": sum(1 for c in conversations if c.kind == "group"),
        "accepted": accepted,
        "errors": dict(tally.errors),
        "send_seconds": send_seconds,
        "accepted_per_s": accepted / send_seconds,
        "p50_ms": percentile(tally.latencies, 0.5) * 1000,
        "p99_ms": percentile(tally.latencies, 0.99) * 1000,
        "persist_lag_s": None if persisted_at is None else max(0.0, persisted_at - tally.last_ack),
        "persisted_per_s": None if persisted_at is None else accepted / (persisted_at - began),
        "behind": behind,
        "cpu_s": {name: cpu_after[name] - cpu_before[name] for name in processes},
        "measured_s": (persisted_at or time.monotonic()) - began,
    }


def report(results: dict[str, Any], config: Config) -> str:
    if config.url is not None:
        system = f"a running system at {config.url}; config `{config.config.name}`"
    else:
        system = describe(config.config, modules(config.shape, config.config))
    errors = ", ".join(f"{n} {kind}" for kind, n in sorted(results["errors"].items())) or "none"
    if results["persist_lag_s"] is None:
        persisted = (
            f"**not all persisted** within {config.persist_timeout_s:g} s: {results['behind']} conversations behind"
        )
    else:
        persisted = (
            f"all {results['accepted']} persisted {results['persist_lag_s']:.2f} s after the last acknowledgement "
            f"({results['persisted_per_s']:.0f} msgs/s from the first send to the last persisted)"
        )
    lines = [
        f"## send — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit()}",
        "",
        f"- machine: {machine()}; 1-minute load average {results['load_before']:.2f} before the run",
        f"- system: {system}, log level WARNING; the bench client on the same machine",
        f"- workload: {results['users']} users in {results['directs'] + results['groups']} conversations "
        f"({results['directs']} direct, {results['groups']} groups of {config.group_size}), "
        f"{config.concurrency} sends in flight for {config.duration_s:g} s, a fresh client_msg_id each",
        f"- accepted: **{results['accepted']} messages, {results['accepted_per_s']:.0f} msgs/s**; errors: {errors}",
        f"- send latency: **p50 {results['p50_ms']:.1f} ms, p99 {results['p99_ms']:.1f} ms**",
        f"- persisted: {persisted}",
        "",
        f"| process | CPU seconds over {results['measured_s']:.1f} s | per 1,000 messages |",
        "|---|---:|---:|",
    ]
    for name, seconds in results["cpu_s"].items():
        per_thousand = seconds / results["accepted"] * 1000 if results["accepted"] else float("nan")
        lines.append(f"| {name} | {seconds:.2f} | {per_thousand:.3f} |")
    return "\n".join(lines) + "\n"


def _pids(values: list[str]) -> dict[str, int]:
    pids: dict[str, int] = {}
    for value in values:
        name, _, pid = value.partition("=")
        if not name or not pid.isdigit():
            raise typer.BadParameter(f"--pid takes NAME=PID, got {value!r}")
        pids[name] = int(pid)
    return pids


def command(
    users: Annotated[int, typer.Option(help="Simulated users.", min=2)] = 100,
    conversations: Annotated[int, typer.Option(help="Conversations: direct pairs plus --groups groups.", min=1)] = 50,
    groups: Annotated[int, typer.Option(help="Of the conversations, how many are groups.", min=0)] = 10,
    group_size: Annotated[int, typer.Option(help="Members per group, the owner included.", min=2)] = 10,
    duration: Annotated[float, typer.Option(help="Seconds of sending.", min=1)] = 20,
    concurrency: Annotated[int, typer.Option(help="Sends in flight at any moment.", min=1)] = 64,
    persist_timeout: Annotated[float, typer.Option(help="Seconds to wait for persistence after sending.")] = 120,
    url: Annotated[str | None, typer.Option(help="Target this bff instead of starting a system.")] = None,
    pid: Annotated[list[str] | None, typer.Option(help="With --url: NAME=PID of a process to measure CPU of.")] = None,
    config: Annotated[Path, typer.Option("--config", help="Config of the system it starts.")] = Path(
        "configs/dev.yaml"
    ),
    shape: Annotated[Shape, typer.Option(help="dev: one process; serve: one per module; auto: by the bus.")] = (
        Shape.auto
    ),
    output: Annotated[Path, typer.Option(help="Markdown file the results are appended to.")] = Path(
        "docs/BENCHMARKS.md"
    ),
) -> None:
    """Accepted msgs/s, p50/p99 send latency, time until persisted, CPU per 1,000 messages; appended to OUTPUT."""
    settings = Config(
        users, conversations, groups, group_size, duration, concurrency, persist_timeout,
        url, _pids(pid or []), config, shape, output,
    )  # fmt: skip
    plan(users, conversations, groups, group_size)  # reject an impossible layout before starting anything
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores with the system measured
    results = {**asyncio.run(run(settings)), "load_before": load_before}
    section = report(results, settings)
    append(output, section)
    typer.echo(section)
