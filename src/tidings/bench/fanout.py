"""``tidings bench fanout``: send -> deliver latency over WebSocket for direct chats, small groups and one big group.

It starts the system on free ports in a scratch directory (``tidings dev``, or one ``tidings serve <module>`` per
module for a config on Kafka, see ``bench.system``) or targets ``--url``, registers C users, puts up to 1,000 (half
of C) in one group and the rest in direct pairs and groups of ``--small-group`` members, connects one WebSocket per
user, measures the bff's RSS per idle connection (``/proc/<pid>/status`` VmRSS before and after connecting), then
sends at a target rate for a while, as chat clients do: a ``send`` frame on the sender's own socket, answered by a
``sent`` frame with the same ``ref``. It times every ``message.new`` from just before the send frame to its arrival
on each other member's socket. The results, the config, the commit, the date and the machine are appended to a
Markdown file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tidings.bench.record import append, commit, machine
from tidings.bench.system import (
    BENCH_CLIENT,
    ConfigOption,
    OutputOption,
    Shape,
    ShapeOption,
    UrlOption,
    cpu_of,
    describe,
    middleware_pids,
    modules,
    percentile,
    rss_kib,
    start,
)

SENDS_IN_FLIGHT = 256
GROUP_MAX = 1000  # the largest group the bench builds (chat's create limit is 1,000 listed members)
# Of the users outside the big group, the share seated in small groups (the others in direct pairs).
SMALL_GROUP_SHARE = 0.4
# Waiting for the last copies: until all arrived, or none arrived for this long (at most STRAGGLERS_MAX_S).
STRAGGLERS_QUIET_S = 10.0
STRAGGLERS_MAX_S = 120.0
# The bff closes a connection it could not register with 1013: the client tries again, up to this many times.
RETRY_LATER = 1013
CONNECT_ATTEMPTS = 8
# The message id of a ``sent`` or ``message.new`` frame (``"message":{"id":"…",…}``), and a ``sent`` or
# ``error`` frame's ``ref``: found without parsing the frame.
_MESSAGE_ID = re.compile(rb'"message":\{"id":"(\d+)"')
_REF = re.compile(rb'"ref":(\d+)')


@dataclass
class Config:
    clients: int
    rate: float
    duration_s: float
    group_rate: float
    small_group: int
    url: str | None
    bff_pid: int | None
    output: Path
    config: Path
    shape: Shape


@dataclass
class User:
    id: str
    token: str
    received: dict[str, float] = field(default_factory=dict)  # message id -> arrival (monotonic)
    socket: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None


@dataclass
class Sent:
    kind: str  # "direct" or "group:<size>"
    sender: str
    recipients: list[User]
    started: float


class Bench:
    def __init__(self, http: httpx.AsyncClient, ws_url: str, config: Config) -> None:
        # httpx sets the system up (not measured); the timed sends go over the WebSockets.
        self._http = http
        self._ws_url = ws_url
        self._answers: dict[int, asyncio.Future[bytes]] = {}
        self._refs = 0
        self._config = config
        self._limit = asyncio.Semaphore(64)
        # Sign-up hashes a password (argon2id, CPU-bound by design): a few at a time, or they queue past deadlines.
        self._signups = asyncio.Semaphore(2 * (os.cpu_count() or 1))
        self.sent: dict[str, Sent] = {}
        self.send_errors = 0
        self.connect_retries = 0

    async def register(self, count: int) -> list[User]:
        tag = uuid.uuid4().hex[:6]

        async def one(n: int) -> User:
            async with self._signups:
                answer = await self._http.post(
                    "/v1/auth/register", json={"username": f"b{tag}_{n}", "password": "bench password 1"}
                )
            answer.raise_for_status()
            body = answer.json()
            return User(str(body["user"]["id"]), body["access_token"])

        return list(await asyncio.gather(*(one(n) for n in range(count))))

    def _auth(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {user.token}"}

    async def direct(self, a: User, b: User) -> str:
        async with self._limit:
            answer = await self._http.post(
                "/v1/conversations", json={"kind": "direct", "peer_id": b.id}, headers=self._auth(a)
            )
        answer.raise_for_status()
        return str(answer.json()["id"])

    async def group(self, owner: User, members: list[User]) -> str:
        body = {"kind": "group", "title": "bench", "member_ids": [m.id for m in members]}
        answer = await self._http.post("/v1/conversations", json=body, headers=self._auth(owner))
        answer.raise_for_status()
        return str(answer.json()["id"])

    async def connect(self, user: User) -> None:
        """Open the user's socket and wait for ``ready``; a 1013 ("try again shortly") is retried, as a client would."""
        for attempt in range(CONNECT_ATTEMPTS):
            async with self._limit:
                socket = await connect(f"{self._ws_url}?token={user.token}", max_size=None, ping_interval=None)
                try:
                    ready = json.loads(await socket.recv())
                except ConnectionClosed as closed:
                    if closed.rcvd is None or closed.rcvd.code != RETRY_LATER or attempt == CONNECT_ATTEMPTS - 1:
                        raise
                    self.connect_retries += 1
                    await asyncio.sleep(0.5 * (attempt + 1))
                    continue
            if ready.get("type") != "ready":
                raise RuntimeError(f"expected ready, got {ready}")
            user.socket = socket
            user.reader = asyncio.create_task(self._read(user))
            return

    async def _read(self, user: User) -> None:
        assert user.socket is not None
        with contextlib.suppress(ConnectionClosed):
            async for frame in user.socket:
                now = time.monotonic()
                raw = frame if isinstance(frame, bytes) else frame.encode()
                # Read by pattern, not parsed: one client process reads every socket, so each frame must be cheap.
                if raw.startswith(b'{"type":"message.new"'):
                    found = _MESSAGE_ID.search(raw)
                    if found is not None:
                        user.received.setdefault(found.group(1).decode(), now)
                elif raw.startswith((b'{"type":"sent"', b'{"type":"error"')):
                    ref = _REF.search(raw)
                    waiter = self._answers.pop(int(ref.group(1)), None) if ref is not None else None
                    if waiter is not None and not waiter.done():
                        waiter.set_result(raw)

    async def send(self, kind: str, sender: User, conversation: str, recipients: list[User]) -> None:
        assert sender.socket is not None
        self._refs += 1
        ref = self._refs
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answers[ref] = answer
        frame = b'{"type":"send","conversation_id":"%s","client_msg_id":"%s","text":"bench %s","ref":%d}' % (
            conversation.encode(),
            uuid.uuid4().hex.encode(),
            kind.encode(),
            ref,
        )
        started = time.monotonic()
        try:
            await sender.socket.send(frame, text=True)
            raw = await asyncio.wait_for(answer, 30)
        except (OSError, TimeoutError, ConnectionClosed):
            self._answers.pop(ref, None)
            self.send_errors += 1
            return
        found = _MESSAGE_ID.search(raw)
        if not raw.startswith(b'{"type":"sent"') or found is None:
            self.send_errors += 1
            return
        self.sent[found.group(1).decode()] = Sent(
            kind, sender.id, [r for r in recipients if r.id != sender.id], started
        )


async def run(config: Config) -> dict[str, Any]:
    """The whole benchmark; answers the measured numbers."""
    if config.url is not None:
        return await measure(config.url, {"bff": config.bff_pid} if config.bff_pid else {}, config)
    async with start(config.config, modules(config.shape, config.config)) as system:
        return await measure(system.url, system.pids, config)


@dataclass(frozen=True)
class Layout:
    """Who talks where: the big group, the small groups and the direct pairs, as users."""

    group: list[User]
    small_groups: list[list[User]]
    pairs: list[tuple[User, User]]


def layout(users: list[User], small_group: int) -> Layout:
    group_size = min(GROUP_MAX, max(2, len(users) // 2))
    group, rest = users[:group_size], users[group_size:]
    if len(rest) < 2:
        rest = users
    seated = int(len(rest) * SMALL_GROUP_SHARE) // small_group * small_group
    small = [rest[i : i + small_group] for i in range(0, seated, small_group)]
    paired = rest[seated:]
    return Layout(group, small, [(paired[i], paired[i + 1]) for i in range(0, len(paired) - 1, 2)])


async def stragglers(bench: Bench) -> None:
    """Wait until every recipient has its copy, or none has come for ``STRAGGLERS_QUIET_S``."""
    deadline = time.monotonic() + STRAGGLERS_MAX_S
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        missing = sum(1 for mid, s in bench.sent.items() for r in s.recipients if mid not in r.received)
        if missing == 0:
            return
        if missing != last_count:
            last_count, last_change = missing, time.monotonic()
        elif time.monotonic() - last_change > STRAGGLERS_QUIET_S:
            return
        await asyncio.sleep(0.2)  # the sockets announce nothing: look again


async def drive(
    bench: Bench, seats: Layout, group: str, others: list[tuple[str, str, list[User]]], config: Config
) -> float:
    """Send at the target rate for the duration (open loop: each send starts on time, at most SENDS_IN_FLIGHT at
    once); the seconds it took until every send was answered."""
    rng = random.Random(7)  # noqa: S311 - picks workload, not secrets
    tasks: set[asyncio.Task[None]] = set()
    in_flight = asyncio.Semaphore(SENDS_IN_FLIGHT)

    async def paced(kind: str, sender: User, conversation: str, recipients: list[User]) -> None:
        async with in_flight:
            await bench.send(kind, sender, conversation, recipients)

    began = time.monotonic()
    n = group_n = 0
    while (elapsed := time.monotonic() - began) < config.duration_s:
        if group_n < elapsed * config.group_rate:
            group_n += 1
            job = paced(f"group:{len(seats.group)}", rng.choice(seats.group), group, seats.group)
        else:
            kind, conversation, members = rng.choice(others)
            job = paced(kind, rng.choice(members), conversation, members)
        n += 1
        task = asyncio.create_task(job)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, began + n / config.rate - time.monotonic()))
    await asyncio.gather(*tasks)
    return time.monotonic() - began


async def measure(url: str, pids: dict[str, int], config: Config) -> dict[str, Any]:
    """``pids``: the system's processes by name (the bff's is measured for RSS), for their CPU."""
    ws_url = url.replace("http", "ws", 1) + "/v1/ws"
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    pid = pids.get("bff", pids.get("dev"))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        bench = Bench(http, ws_url, config)
        users = await bench.register(config.clients)
        seats = layout(users, config.small_group)
        group = await bench.group(seats.group[0], seats.group[1:])
        smalls = list(await asyncio.gather(*(bench.group(g[0], g[1:]) for g in seats.small_groups)))
        directs = list(await asyncio.gather(*(bench.direct(a, b) for a, b in seats.pairs)))
        # Everything but the big group, picked uniformly: (kind, conversation, members).
        others: list[tuple[str, str, list[User]]] = [
            *((f"group:{len(g)}", cid, g) for cid, g in zip(smalls, seats.small_groups, strict=True)),
            *(("direct", cid, [a, b]) for cid, (a, b) in zip(directs, seats.pairs, strict=True)),
        ]
        rss_before = rss_kib(pid) if pid else None
        await asyncio.gather(*(bench.connect(user) for user in users))
        await asyncio.sleep(2)  # let the connections settle (routes written, buffers allocated)
        rss_after = rss_kib(pid) if pid else None

        servers = middleware_pids()
        processes = {**pids, **servers, BENCH_CLIENT: os.getpid()}
        cpu_before = cpu_of(processes)
        send_seconds = await drive(bench, seats, group, others, config)
        await stragglers(bench)
        cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_of(processes).items()}
        for user in users:
            if user.socket is not None:
                await user.socket.close()
            if user.reader is not None:
                await asyncio.gather(user.reader, return_exceptions=True)

    results = summarize(bench, users, config, send_seconds, len(seats.group), rss_before, rss_after)
    results["cpu_s"] = {name: cpu[name] for name in pids}
    results["middleware_cpu_s"] = {name: cpu[name] for name in servers}
    results["client_cpu_s"] = cpu[BENCH_CLIENT]
    return results


def summarize(
    bench: Bench,
    users: list[User],
    config: Config,
    send_seconds: float,
    group_size: int,
    rss_before: int | None,
    rss_after: int | None,
) -> dict[str, Any]:
    by_kind: dict[str, list[float]] = {}
    reach: dict[str, list[float]] = {}
    expected = delivered = 0
    first, last = float("inf"), 0.0
    for message_id, sent in bench.sent.items():
        arrivals = [r.received[message_id] for r in sent.recipients if message_id in r.received]
        expected += len(sent.recipients)
        delivered += len(arrivals)
        by_kind.setdefault(sent.kind, []).extend(t - sent.started for t in arrivals)
        if arrivals and len(arrivals) == len(sent.recipients):
            reach.setdefault(sent.kind, []).append(max(arrivals) - sent.started)
        first = min(first, sent.started)
        last = max([last, *arrivals])
    kinds = {}
    for kind, latencies in sorted(by_kind.items()):
        kinds[kind] = {
            "messages": sum(1 for s in bench.sent.values() if s.kind == kind),
            "deliveries": len(latencies),
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "all_members_p99_ms": percentile(reach.get(kind, []), 0.99) * 1000,
        }
    per_connection = (rss_after - rss_before) / len(users) if rss_before and rss_after else None
    return {
        "clients": len(users),
        "group_size": group_size,
        "sent": len(bench.sent),
        "send_errors": bench.send_errors,
        "achieved_rate": len(bench.sent) / send_seconds,
        "deliveries": delivered,
        "expected_deliveries": expected,
        "deliveries_per_s": delivered / (last - first) if last > first else 0.0,
        "kinds": kinds,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_per_connection_kib": per_connection,
        "connect_retries": bench.connect_retries,
    }


def report(results: dict[str, Any], config: Config) -> str:
    if config.url is not None:
        target = f"a running system at {config.url}"
    else:
        target = describe(config.config, modules(config.shape, config.config))
    lines = [
        f"## fanout — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit()}",
        "",
        f"- machine: {machine()}; 1-minute load average {results['load_before']:.2f} before the run",
        f"- system: {target}",
        f"- config: {results['clients']} WebSocket clients, one group of {results['group_size']} members, the rest "
        f"in groups of {config.small_group} and direct pairs; target {config.rate:g} msgs/s for "
        f"{config.duration_s:g} s ({config.group_rate:g} msgs/s to the big group among them), as `send` frames on "
        "each sender's WebSocket",
        f"- connected: every client, after {results['connect_retries']} retries of a 1013 (try again shortly)",
        f"- sent: {results['sent']} messages at {results['achieved_rate']:.1f} msgs/s achieved, "
        f"{results['send_errors']} send errors",
        f"- delivered: {results['deliveries']} of {results['expected_deliveries']} expected copies, "
        f"{results['deliveries_per_s']:.0f} deliveries/s",
    ]
    if results["rss_per_connection_kib"] is not None:
        lines.append(
            f"- bff process RSS: {results['rss_before_kib']} KiB before, {results['rss_after_kib']} KiB with every "
            f"client connected and idle: {results['rss_per_connection_kib']:.1f} KiB per idle connection"
        )
    else:
        lines.append("- bff process RSS: not measured (pass --bff-pid with --url)")
    lines += [
        "",
        "| process, from the first send to the last delivery | CPU seconds | ms per message | ms per delivery |",
    ]
    lines.append("|---|---:|---:|---:|")
    rows = [
        *results["cpu_s"].items(),
        ("bench client (sender and every socket)", results["client_cpu_s"]),
        *((f"{name} (middleware)", seconds) for name, seconds in results["middleware_cpu_s"].items()),
    ]
    for name, seconds in rows:
        per_message = seconds * 1000 / results["sent"] if results["sent"] else float("nan")
        per_delivery = seconds * 1000 / results["deliveries"] if results["deliveries"] else float("nan")
        lines.append(f"| {name} | {seconds:.2f} | {per_message:.3f} | {per_delivery:.3f} |")
    lines += [
        "",
        "| conversation | messages | deliveries | send -> deliver p50 | p99 | every member reached, p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, k in results["kinds"].items():
        lines.append(
            f"| {kind} | {k['messages']} | {k['deliveries']} | {k['p50_ms']:.1f} ms | {k['p99_ms']:.1f} ms "
            f"| {k['all_members_p99_ms']:.1f} ms |"
        )
    return "\n".join(lines) + "\n"


def command(
    clients: Annotated[int, typer.Option(help="Concurrent WebSocket clients (one user each).", min=4)] = 2000,
    rate: Annotated[float, typer.Option(help="Target messages per second, all conversations.", min=1)] = 500,
    duration: Annotated[float, typer.Option(help="Seconds of sending.", min=1)] = 10,
    group_rate: Annotated[float, typer.Option(help="Of those, messages per second to the big group.", min=0)] = 2,
    small_group: Annotated[int, typer.Option(help="Members of each small group.", min=3)] = 10,
    url: UrlOption = None,
    bff_pid: Annotated[int | None, typer.Option(help="With --url: the bff's pid, for RSS per connection.")] = None,
    config: ConfigOption = Path("configs/dev.yaml"),
    shape: ShapeOption = Shape.auto,
    output: OutputOption = Path("docs/BENCHMARKS.md"),
) -> None:
    """Send -> deliver latency per conversation size, deliveries/s and RSS per idle connection; appended to OUTPUT."""
    settings = Config(
        clients, rate, duration, group_rate, small_group, url, bff_pid, output, config.resolve(), shape
    )  # fmt: skip
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores with the system measured
    results = {**asyncio.run(run(settings)), "load_before": load_before}
    section = report(results, settings)
    append(output, section)
    typer.echo(section)
