"""``tidings bench send``: how many messages the bff accepts per second, how fast, and at what cost per message.

N users in M conversations (direct pairs and groups) send through the bff for T seconds, over REST
(``POST …/messages``) or over their WebSockets (``send`` frames), each send with a fresh ``client_msg_id``:

- closed loop (``--rate 0``): a fixed number of sends always in flight, which finds the ceiling;
- open loop (``--rate R``): R sends per second offered on a fixed schedule, whatever the answers do, with each
  latency counted from the moment its send was due, so a stall shows in the percentiles instead of slowing the
  offered load (no coordinated omission).

Measured: accepted msgs/s, p50/p99 send latency, the time until every accepted message is persisted
(``GET /v1/conversations/{id}`` ``max_seq`` reaches the highest acknowledged seq of each conversation), and per
message: the CPU of every process, the bench client included (``/proc/<pid>/stat``), the round trips each Tidings
process made to MySQL, Redis and Kafka, and what the MariaDB and Redis servers executed (``bench.counters``).
The system is ``tidings dev``, one ``tidings serve <module>`` per module, or ``--url``. The results, the config,
the commit, the date and the machine are appended to a Markdown file.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from websockets.asyncio.client import ClientConnection, connect

from tidings import conf
from tidings.bench import counters, load
from tidings.bench.record import append, commit, machine
from tidings.bench.system import (
    BENCH_CLIENT,
    ConfigOption,
    OutputOption,
    Shape,
    ShapeOption,
    UrlOption,
    cpu_of,
    cpu_seconds,
    describe,
    middleware_pids,
    modules,
    percentile,
    start,
)
from tidings.pkg.app import event_loop_factory

GROUP_MAX = 1000  # chat's create limit on listed members
_SEQ = re.compile(rb'"seq":(\d+)')
_MAX_SEQ = re.compile(rb'"max_seq":(\d+)')


class Via(StrEnum):
    http = "http"
    ws = "ws"


@dataclass(frozen=True)
class Config:
    users: int
    conversations: int
    groups: int
    group_size: int
    duration_s: float
    concurrency: int
    rate: float
    via: Via
    persist_timeout_s: float
    url: str | None
    pids: dict[str, int]
    metrics: dict[str, str]
    config: Path
    shape: Shape
    output: Path
    log_level: str


@dataclass(frozen=True)
class User:
    id: str
    token: str

    @property
    def auth(self) -> str:
        return f"Authorization: Bearer {self.token}\r\n"


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

    def accepted(self, conversation: str, seq: int, due: float) -> None:
        finished = time.monotonic()
        self.latencies.append(finished - due)
        self.last_ack = max(self.last_ack, finished)
        if seq > self.highest_seq.get(conversation, 0):
            self.highest_seq[conversation] = seq


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


async def set_up(http: httpx.AsyncClient, config: Config) -> tuple[list[User], list[Conversation]]:
    """Register the users and open the conversations (httpx: setup is not measured)."""
    tag = uuid.uuid4().hex[:6]
    # Sign-up hashes a password (argon2id, CPU-bound by design): a few at a time, or they queue past deadlines.
    signups = asyncio.Semaphore(2 * (os.cpu_count() or 1))
    opening = asyncio.Semaphore(config.concurrency)

    async def register(n: int) -> User:
        async with signups:
            answer = await http.post(
                "/v1/auth/register", json={"username": f"s{tag}_{n}", "password": "bench password 1"}
            )
        answer.raise_for_status()
        body = answer.json()
        return User(str(body["user"]["id"]), body["access_token"])

    users = list(await asyncio.gather(*(register(n) for n in range(config.users))))

    async def open_one(kind: str, indexes: list[int]) -> Conversation:
        members = tuple(users[i] for i in indexes)
        body: dict[str, Any] = (
            {"kind": "direct", "peer_id": members[1].id}
            if kind == "direct"
            else {"kind": "group", "title": "bench", "member_ids": [m.id for m in members[1:]]}
        )
        async with opening:
            answer = await http.post(
                "/v1/conversations", json=body, headers={"Authorization": f"Bearer {members[0].token}"}
            )
        answer.raise_for_status()
        return Conversation(str(answer.json()["id"]), kind, members)

    layout = plan(config.users, config.conversations, config.groups, config.group_size)
    return users, list(await asyncio.gather(*(open_one(kind, indexes) for kind, indexes in layout)))


# A send: given the seat and the moment it was due, send one message and record the outcome in the tally.
SendOne = Callable[[User, Conversation, str, float], Awaitable[None]]


def over_http(client: load.Client, tally: Tally) -> SendOne:
    async def send(user: User, conversation: Conversation, client_msg_id: str, due: float) -> None:
        body = b'{"client_msg_id":"%s","text":"bench send"}' % client_msg_id.encode()
        raw = client.post(f"/v1/conversations/{conversation.id}/messages", body, user.auth)
        try:
            answer = await client.request(raw)
        except (OSError, load.ProtocolViolation) as exc:
            tally.errors[type(exc).__name__] += 1
            return
        seq = _SEQ.search(answer.body)
        if answer.status != 201 or seq is None:
            tally.errors[f"HTTP {answer.status}"] += 1
            return
        tally.accepted(conversation.id, int(seq.group(1)), due)

    return send


class Sockets:
    """One WebSocket per sending user; ``send`` frames carry a ``ref`` that their ``sent`` answer echoes."""

    def __init__(self, ws_url: str, tally: Tally) -> None:
        self._ws_url = ws_url
        self._tally = tally
        self._sockets: dict[str, ClientConnection] = {}
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._refs = 0

    async def open(self, users: list[User]) -> None:
        async def one(user: User) -> None:
            socket = await connect(f"{self._ws_url}?token={user.token}", max_size=None, ping_interval=None)
            while b'"ready"' not in await socket.recv(decode=False):
                pass
            self._sockets[user.id] = socket
            self._readers.append(asyncio.create_task(self._read(socket)))

        for first in range(0, len(users), 50):  # a few at a time: connecting is setup, not the load
            await asyncio.gather(*(one(user) for user in users[first : first + 50]))

    async def _read(self, socket: ClientConnection) -> None:
        async for frame in socket:
            raw = frame if isinstance(frame, bytes) else frame.encode()
            # Deliveries to the other members are not answers: skip them without parsing.
            if raw.startswith((b'{"type":"sent"', b'{"type":"error"')):
                ref = orjson.loads(raw).get("ref")
                waiter = self._waiting.pop(ref, None) if isinstance(ref, int) else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(raw)

    async def send(self, user: User, conversation: Conversation, client_msg_id: str, due: float) -> None:
        self._refs += 1
        ref = self._refs
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = waiter
        frame = b'{"type":"send","conversation_id":"%s","client_msg_id":"%s","text":"bench send","ref":%d}' % (
            conversation.id.encode(),
            client_msg_id.encode(),
            ref,
        )
        try:
            await self._sockets[user.id].send(frame, text=True)
            answer = await asyncio.wait_for(waiter, 30)
        except (OSError, TimeoutError) as exc:
            self._waiting.pop(ref, None)
            self._tally.errors[type(exc).__name__] += 1
            return
        seq = _SEQ.search(answer)
        if not answer.startswith(b'{"type":"sent"') or seq is None:
            self._tally.errors["error frame"] += 1
            return
        self._tally.accepted(conversation.id, int(seq.group(1)), due)

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*(socket.close() for socket in self._sockets.values()), return_exceptions=True)
        await asyncio.gather(*self._readers, return_exceptions=True)


async def drive(seats: list[tuple[User, Conversation]], send: SendOne, config: Config) -> float:
    """Send for ``duration_s``: closed loop (``concurrency`` senders) or open loop (``rate`` per second); answers
    the seconds until the last send was answered."""
    rng = random.Random(7)  # noqa: S311 - picks workload, not secrets
    tag = uuid.uuid4().hex[:8]
    numbers = iter(range(1 << 62))
    begin = time.monotonic()
    stop = begin + config.duration_s

    def next_send(due: float) -> Awaitable[None]:
        user, conversation = rng.choice(seats)
        return send(user, conversation, f"{tag}-{next(numbers)}", due)

    if config.rate <= 0:

        async def sender() -> None:
            while (now := time.monotonic()) < stop:
                await next_send(now)

        await asyncio.gather(*(sender() for _ in range(config.concurrency)))
        return time.monotonic() - begin

    interval = 1 / config.rate
    in_flight: set[asyncio.Task[None]] = set()
    due = begin
    while due < stop:
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        # Every send that is due by now goes out, late ones at once: the schedule never waits for answers.
        while due <= time.monotonic() and due < stop:
            task = asyncio.ensure_future(next_send(due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += interval
    await asyncio.gather(*in_flight)
    return time.monotonic() - begin


async def persisted(
    client: load.Client, conversations: list[Conversation], tally: Tally, timeout_s: float
) -> tuple[float | None, int]:
    """Poll every conversation until its ``max_seq`` reaches the highest acknowledged seq; answers the moment
    the last one did (monotonic, None on timeout) and how many conversations were still behind."""
    pending = {c.id: c for c in conversations if c.id in tally.highest_seq}
    deadline = time.monotonic() + timeout_s

    async def caught_up(conversation: Conversation) -> bool:
        raw = (
            f"GET /v1/conversations/{conversation.id} HTTP/1.1\r\nHost: {client.host_header}\r\n"
            f"{conversation.members[0].auth}\r\n"
        ).encode()
        answer = await client.request(raw)
        max_seq = _MAX_SEQ.search(answer.body)
        return max_seq is not None and int(max_seq.group(1)) >= tally.highest_seq[conversation.id]

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


async def run(config: Config) -> dict[str, Any]:
    """The whole benchmark; answers the measured numbers."""
    if config.url is not None:
        return await measure(config.url, config.pids, config.metrics, config)
    async with start(config.config, modules(config.shape, config.config), log_level=config.log_level) as system:
        return await measure(system.url, system.pids, system.metrics, config)


async def measure(url: str, pids: dict[str, int], metrics: dict[str, str], config: Config) -> dict[str, Any]:
    settings = conf.load(config.config)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        users, conversations = await set_up(http, config)
    seats = [(member, c) for c in conversations for member in c.members]
    tally = Tally()
    # No more connections than the bff lets one address hold: sends beyond them wait here for a connection (their
    # latency still counts from their due time), as behind any client's connection pool.
    cap = settings.modules.bff.max_connections_per_client
    client = load.Client(url, max_connections=min(config.concurrency, cap) if cap else config.concurrency)
    sockets = Sockets(url.replace("http://", "ws://", 1) + "/v1/ws", tally) if config.via is Via.ws else None
    try:
        if sockets is not None:
            await sockets.open(sorted({user for user, _ in seats}, key=lambda user: user.id))
        servers = middleware_pids()
        processes = {**pids, **servers, BENCH_CLIENT: os.getpid()}
        trips_before, servers_before = await counters.round_trips(metrics), await counters.server_counts(settings)
        cpu_before = cpu_of(processes)
        began = time.monotonic()
        send = sockets.send if sockets is not None else over_http(client, tally)
        send_seconds = await drive(seats, send, config)
        client_cpu = cpu_seconds(os.getpid()) - cpu_before[BENCH_CLIENT]
        persisted_at, behind = await persisted(client, conversations, tally, config.persist_timeout_s)
        cpu_after = cpu_of(processes)
        trips_after, servers_after = await counters.round_trips(metrics), await counters.server_counts(settings)
    finally:
        client.close()
        if sockets is not None:
            await sockets.close()
    accepted = len(tally.latencies)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in pids}
    middleware_cpu = {name: cpu_after[name] - cpu_before[name] for name in servers}
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
        "cpu_s": cpu,
        "middleware_cpu_s": middleware_cpu,
        "client_cpu_s": client_cpu,
        "measured_s": (persisted_at or time.monotonic()) - began,
        "round_trips": counters.difference(trips_after, trips_before),
        "servers": counters.difference(servers_after, servers_before),
    }


def _per_message(value: float, accepted: int) -> str:
    return f"{value / accepted:.3f}" if accepted else "n/a"


def round_trip_table(trips: dict[str, float], accepted: int) -> list[str]:
    """Round trips per message, a row per process and a column per system, with the totals."""
    systems = sorted({key.rpartition(" ")[2] for key in trips})
    processes = list(dict.fromkeys(key.rpartition(" ")[0] for key in trips))
    lines = [
        "",
        "| round trips per message | " + " | ".join(systems) + " |",
        "|---|" + "---:|" * len(systems),
    ]
    for process in [*processes, "all"]:
        cells = [
            sum(
                count
                for key, count in trips.items()
                if key.endswith(f" {system}") and process in ("all", key.rpartition(" ")[0])
            )
            for system in systems
        ]
        lines.append(f"| {process} | " + " | ".join(_per_message(cell, accepted) for cell in cells) + " |")
    return lines


def report(results: dict[str, Any], config: Config) -> str:
    if config.url is not None:
        system = f"a running system at {config.url}; config `{config.config.name}`"
    else:
        system = describe(config.config, modules(config.shape, config.config))
    errors = ", ".join(f"{n} {kind}" for kind, n in sorted(results["errors"].items())) or "none"
    if results["persist_lag_s"] is None:
        persisted_line = (
            f"**not all persisted** within {config.persist_timeout_s:g} s: {results['behind']} conversations behind"
        )
    else:
        persisted_line = (
            f"all {results['accepted']} persisted {results['persist_lag_s']:.2f} s after the last acknowledgement "
            f"({results['persisted_per_s']:.0f} msgs/s from the first send to the last persisted)"
        )
    loop = (
        f"open loop: {config.rate:g} sends/s offered for {config.duration_s:g} s (latency from each send's due time),"
        f" at most {config.concurrency} in flight"
        if config.rate > 0
        else f"closed loop: {config.concurrency} sends in flight for {config.duration_s:g} s"
    )
    via = "REST `POST …/messages`" if config.via is Via.http else "WebSocket `send` frames, one socket per user"
    accepted = results["accepted"]
    cpu_total = sum(results["cpu_s"].values())
    middleware_total = sum(results["middleware_cpu_s"].values())
    lines = [
        f"## send — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit()}",
        "",
        f"- machine: {machine()}; 1-minute load average {results['load_before']:.2f} before the run",
        f"- system: {system}, log level {config.log_level}; the bench client on the same machine",
        f"- workload: {results['users']} users in {results['directs'] + results['groups']} conversations "
        f"({results['directs']} direct, {results['groups']} groups of {config.group_size}), over {via}; "
        f"{loop}; a fresh client_msg_id each",
        f"- accepted: **{accepted} messages, {results['accepted_per_s']:.0f} msgs/s**; errors: {errors}",
        f"- send latency: **p50 {results['p50_ms']:.1f} ms, p99 {results['p99_ms']:.1f} ms**",
        f"- persisted: {persisted_line}",
        f"- CPU per message, Tidings processes together: **{_per_message(cpu_total * 1000, accepted)} ms**; "
        f"the bench client: **{_per_message(results['client_cpu_s'] * 1000, accepted)} ms** while sending"
        + (
            f"; the middleware servers on this machine: **{_per_message(middleware_total * 1000, accepted)} ms**"
            if results["middleware_cpu_s"]
            else ""
        ),
        "",
        f"| process | CPU seconds over {results['measured_s']:.1f} s | ms per message |",
        "|---|---:|---:|",
    ]
    for name, seconds in results["cpu_s"].items():
        lines.append(f"| {name} | {seconds:.2f} | {_per_message(seconds * 1000, accepted)} |")
    lines.append(
        f"| bench client (sending) | {results['client_cpu_s']:.2f} | "
        f"{_per_message(results['client_cpu_s'] * 1000, accepted)} |"
    )
    for name, seconds in results["middleware_cpu_s"].items():
        lines.append(f"| {name} (middleware) | {seconds:.2f} | {_per_message(seconds * 1000, accepted)} |")
    lines += round_trip_table(results["round_trips"], accepted)
    if results["servers"]:
        lines += ["", "| executed by the servers (their own counters) | total | per message |", "|---|---:|---:|"]
        for name, count in sorted(results["servers"].items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"| {name} | {count:.0f} | {_per_message(count, accepted)} |")
    return "\n".join(lines) + "\n"


def _pairs(option: str, values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, _, target = value.partition("=")
        if not name or not target:
            raise typer.BadParameter(f"{option} takes NAME=VALUE, got {value!r}")
        pairs[name] = target
    return pairs


def command(
    users: Annotated[int, typer.Option(help="Simulated users.", min=2)] = 100,
    conversations: Annotated[int, typer.Option(help="Conversations: direct pairs plus --groups groups.", min=1)] = 50,
    groups: Annotated[int, typer.Option(help="Of the conversations, how many are groups.", min=0)] = 10,
    group_size: Annotated[int, typer.Option(help="Members per group, the owner included.", min=2)] = 10,
    duration: Annotated[float, typer.Option(help="Seconds of sending.", min=1)] = 20,
    concurrency: Annotated[
        int, typer.Option(help="Sends in flight (closed loop), or at most (open loop).", min=1)
    ] = 64,
    rate: Annotated[float, typer.Option(help="Sends per second offered (open loop); 0: closed loop.", min=0)] = 0,
    via: Annotated[Via, typer.Option(help="http: REST POST; ws: WebSocket send frames.")] = Via.http,
    persist_timeout: Annotated[float, typer.Option(help="Seconds to wait for persistence after sending.")] = 120,
    url: UrlOption = None,
    pid: Annotated[list[str] | None, typer.Option(help="With --url: NAME=PID of a process to measure CPU of.")] = None,
    metrics: Annotated[
        list[str] | None, typer.Option(help="With --url: NAME=URL of a process's /metrics, for its round trips.")
    ] = None,
    config: ConfigOption = Path("configs/dev.yaml"),
    shape: ShapeOption = Shape.auto,
    output: OutputOption = Path("docs/BENCHMARKS.md"),
    log_level: Annotated[
        str, typer.Option(help="Log level of the system it starts; INFO writes an access line per request.")
    ] = "WARNING",
) -> None:
    """Accepted msgs/s, p50/p99 send latency, time until persisted, CPU and round trips per message."""
    pids = {name: int(value) for name, value in _pairs("--pid", pid or []).items() if value.isdigit()}
    settings = Config(
        users, conversations, groups, group_size, duration, concurrency, rate, via, persist_timeout,
        url, pids, _pairs("--metrics", metrics or []), config, shape, output, log_level.upper(),
    )  # fmt: skip
    plan(users, conversations, groups, group_size)  # reject an impossible layout before starting anything
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores with the system measured
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        results = {**runner.run(run(settings)), "load_before": load_before}
    section = report(results, settings)
    append(output, section)
    typer.echo(section)
