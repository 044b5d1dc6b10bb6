"""``tidings chaos``: a steady send-and-receive load while the processes it runs on are killed, paused and restarted,
then a check of every acknowledged message.

It starts the modules as separate processes on the configured middleware (the job module split in two: ``job
persist`` runs persist, index and invalidate; ``job push`` runs push), signs people up in direct pairs and groups of
four, and keeps half of them online, one in each pair: a WebSocket for half of those, the gRPC stream for the
others. Every person sends in its conversation at an even share of ``--rate``, over REST or as ``send`` frames on its
WebSocket, one message at a time, retrying a failed send with the same ``client_msg_id`` as a client does; the
people online mark what they have read every few seconds. A receiver whose connection ends connects again and
fetches the history after the last seq it saw, as a client does.

Meanwhile the faults of the profile happen one after another, with the load steady between them: SIGKILL and start
of the Kafka broker, MariaDB and Redis (``scripts/stack kill`` / ``start``), a Redis FLUSHALL, SIGKILL and start of
each job process, chat and the bff, SIGSTOP/SIGCONT of chat, and a network delay to MariaDB (every process reaches
it through a relay of the tool's). The load never stops for them.

With ``--instances 2`` (or more) every process runs that many times (task too), people spread over the bff
instances and move to another when theirs is unreachable, and the faults are one instance of every process killed
at once, then a rolling restart of every process (SIGTERM, drained, started, ready before the next). On the cluster
middleware (a config with ``cache.cluster``: configs/cluster.yaml) the faults are a Kafka broker of three killed, a
Redis Cluster master killed (its replica takes over), and the MariaDB read replica stopped. ``--fault`` picks any.

Afterwards it checks, from the public API only:
- every acknowledged message is stored exactly once, with the id and seq it was acknowledged with;
- each sender's seqs increase strictly in the order of their acknowledgements;
- every receiver got every message of its conversation: live while it was connected, or by fetching history;
- every member's ``unread_count`` is ``max_seq - read_seq``, its ``read_seq`` is the mark it set, and marking the
  newest seq brings it to 0.
The results go into ``docs/RELIABILITY.md`` (with a plot of acknowledgements per second), and the run fails (exit 1)
on any loss, duplicate, reordering, missed delivery or wrong count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import grpc
import httpx
import orjson
import redis.asyncio as redis
import typer
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect

from tidings import conf
from tidings.api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from tidings.bench import load, record, system
from tidings.bench.soak import RELIABILITY_HEADER
from tidings.bench.system import BENCH_CLIENT, ConfigOption
from tidings.pkg.app import event_loop_factory
from tidings.pkg.charts import lines

# The network delay of the "MariaDB delayed" fault, each way.
DATABASE_DELAY_S = 0.2
# The Redis Cluster of scripts/redis-cluster, and how long a master's replica may take to take its slots over.
REDIS_MASTERS = 3
FAILOVER_TIMEOUT_S = 60.0
# The job module in two processes, so that persisting and pushing fail apart.
JOBS: tuple[tuple[conf.JobGroup, ...], ...] = (("persist", "index", "invalidate"), ("push",))
GROUP_SIZE = 4
# A send is retried (same client_msg_id) until acknowledged, for at most this long; then it counts as given up.
RETRY_FOR_S = 120.0
# A sender that fell behind its schedule (a fault held its sends) catches up at most this much of it.
BACKLOG_S = 10.0
# How often each person marks what it has read.
MARK_EVERY_S = 3.0
# How often a connection pings, as clients do (``realtime.idle_timeout_s`` / 2.5 of the default 75 s): a silent
# connection is closed as idle.
PING_EVERY_S = 30.0
# A message that reached another member live this long before a receiver's connection ended must have reached that
# connection too (if it was acknowledged while the connection was up); closer to the end it may have been lost with
# the connection, and history has it.
DELIVERY_GRACE_S = 1.0
# Before the last catch-up, live deliveries are let settle: until none arrived for this long.
QUIET_S = 2.0
# After the load: how long everything may take to settle (persisted, reconnected, caught up).
SETTLE_TIMEOUT_S = 120.0
PAGE = 200


class Profile(StrEnum):
    """``full``: every fault with time to recover between them (minutes); ``short``: the same faults back to back
    at a low rate, as ``make test`` runs it."""

    full = "full"
    short = "short"


@dataclass(frozen=True)
class Timing:
    settle_s: float  # steady load before the first fault, between faults and after the last
    down_s: float  # how long a killed process of ours stays down before it is started again
    pause_s: float  # how long chat stays stopped (SIGSTOP)


TIMINGS = {Profile.full: Timing(20.0, 3.0, 10.0), Profile.short: Timing(4.0, 1.0, 3.0)}


# ---------------------------------------------------------------- people and their connections


@dataclass
class Endpoints:
    """What a client reaches of each bff instance: its REST client, WebSocket URL and gRPC stream target. A person
    uses one instance (``Person.at``) and moves to the next once it cannot reach it, as a load balancer sends a
    client to another instance when one is gone."""

    clients: list[load.Client]
    ws_urls: list[str]
    grpcs: list[str]

    @classmethod
    def of(cls, running: system.System) -> Endpoints:
        clients = [load.Client(url, max_connections=64) for url in running.urls]
        return cls(clients, [url.replace("http://", "ws://") + "/v1/ws" for url in running.urls], running.grpcs)

    def client(self, person: Person) -> load.Client:
        return self.clients[person.at]

    def unreachable(self, person: Person, at: int) -> None:
        """``person`` could not reach instance ``at``: it moves on to the next (unless it has already)."""
        if person.at == at:
            person.at = (at + 1) % len(self.clients)

    def close(self) -> None:
        for client in self.clients:
            client.close()


@dataclass
class Person:
    index: int
    id: str
    token: str
    conversation: str = ""
    sends_over_ws: bool = False
    # Read marks: the highest acknowledged (204) and the highest asked for (an unanswered one may have landed).
    marked: int = 0
    asked: int = 0
    # The bff instance it uses (``Endpoints``).
    at: int = 0

    @property
    def auth(self) -> str:
        return f"Authorization: Bearer {self.token}\r\n"


@dataclass
class Ack:
    person: int
    client_msg_id: str
    id: str
    seq: int
    first_try_at: float
    acked_at: float
    attempts: int


class Answered(RuntimeError):
    """The bff answered, with an error status: it is there, the failure is the request's."""


@dataclass
class Tally:
    acks: list[Ack] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    given_up: int = 0


class Receiver:
    """One person's live connection, kept open: after it ends, connect again and fetch the history after the last
    seq seen. ``seen`` holds every message id of the conversation it got (live or fetched) with its seq."""

    def __init__(self, person: Person, endpoints: Endpoints) -> None:
        self.person = person
        self.endpoints = endpoints
        self.seen: dict[str, int] = {}
        self.live: dict[str, float] = {}  # message id -> when it arrived live
        self.fetched = 0
        self.connected = asyncio.Event()
        # (ready at, ended at): the spans in which it was registered for delivery; an open span ends at +inf.
        self.spans: list[list[float]] = []
        self.reconnects = 0
        # The last seq seen when a connection ended: the history after it is fetched on the next connection, and
        # again at the end (it may not all have been persisted by then).
        self.resume_points: list[int] = []

    @property
    def last_seq(self) -> int:
        return max(self.seen.values(), default=0)

    def arrived(self, message_id: str, conversation: str, seq: int) -> None:
        if conversation == self.person.conversation and message_id not in self.seen:
            self.seen[message_id] = seq
            self.live[message_id] = time.monotonic()

    async def keep(self, stop: asyncio.Event) -> None:
        """Connect, read until the connection ends, connect again: until ``stop``."""
        first = True
        while not stop.is_set():
            at, spans = self.person.at, len(self.spans)
            # Any end of a connection is what a client survives by connecting again.
            with contextlib.suppress(Exception):
                await self.session(stop, first)
            if len(self.spans) == spans:  # never got ready there: the next connection goes to another instance
                self.endpoints.unreachable(self.person, at)
            if self.spans and self.spans[-1][1] == float("inf"):
                self.spans[-1][1] = time.monotonic()
            self.connected.clear()
            if not stop.is_set():
                first = False
                self.reconnects += 1
                self.resume_points.append(self.last_seq)
                await asyncio.sleep(0.3)

    async def session(self, stop: asyncio.Event, first: bool) -> None:
        raise NotImplementedError

    async def ready(self, first: bool) -> None:
        self.spans.append([time.monotonic(), float("inf")])
        self.connected.set()
        if not first:
            # History may be out of reach a while (chat restarting): the connection stays, and the catch-up from
            # this point is made again at the end.
            with contextlib.suppress(Exception):
                await self.catch_up(self.resume_points[-1])

    async def catch_up(self, after: int) -> None:
        """Fetch the history after ``after``, page by page, as a client does after a gap."""
        client = self.endpoints.client(self.person)
        while True:
            raw = (
                f"GET /v1/conversations/{self.person.conversation}/messages?after_seq={after}&limit={PAGE} "
                f"HTTP/1.1\r\nHost: {client.host_header}\r\n{self.person.auth}\r\n"
            ).encode()
            answer = await client.request(raw)
            if answer.status != 200:
                raise RuntimeError(f"history answered {answer.status}")
            page = orjson.loads(answer.body)
            for message in page["messages"]:
                if message["id"] not in self.seen:
                    self.seen[message["id"]] = message["seq"]
                    self.fetched += 1
                after = max(after, message["seq"])
            if not page["has_more"]:
                return

    async def send(self, conversation: str, client_msg_id: str) -> dict[str, Any]:
        raise NotImplementedError


class WebSocketReceiver(Receiver):
    def __init__(self, person: Person, endpoints: Endpoints) -> None:
        super().__init__(person, endpoints)
        self.socket: ClientConnection | None = None
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.refs = 0

    async def session(self, stop: asyncio.Event, first: bool) -> None:
        url = f"{self.endpoints.ws_urls[self.person.at]}?token={self.person.token}"
        async with connect(url, max_size=None, open_timeout=5) as socket:
            self.socket = socket
            pinging = asyncio.ensure_future(_every(PING_EVERY_S, lambda: socket.send('{"type":"ping"}')))
            try:
                ending = asyncio.ensure_future(stop.wait())
                reading = asyncio.ensure_future(self.read(socket, first))
                done, _ = await asyncio.wait({ending, reading}, return_when=asyncio.FIRST_COMPLETED)
                for task in (ending, reading):
                    task.cancel()
                await asyncio.gather(ending, reading, return_exceptions=True)
                if reading in done:
                    reading.result()
            finally:
                pinging.cancel()
                self.socket = None
                for waiter in self.waiting.values():
                    if not waiter.done():
                        waiter.set_exception(ConnectionError("the connection ended"))
                self.waiting.clear()

    async def read(self, socket: ClientConnection, first: bool) -> None:
        async for raw in socket:
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "message.new":
                message = frame["message"]
                self.arrived(message["id"], message["conversation_id"], message["seq"])
            elif kind == "ready":
                await self.ready(first)
            elif kind in ("sent", "error"):
                waiter = self.waiting.pop(frame.get("ref"), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)

    async def send(self, conversation: str, client_msg_id: str) -> dict[str, Any]:
        """A ``send`` frame; answers the acknowledged message, or raises."""
        await asyncio.wait_for(self.connected.wait(), 5)
        socket = self.socket
        if socket is None:
            raise ConnectionError("not connected")
        self.refs += 1
        ref, waiter = self.refs, asyncio.get_running_loop().create_future()
        self.waiting[ref] = waiter
        frame = {"type": "send", "conversation_id": conversation, "client_msg_id": client_msg_id, "text": "chaos"}
        try:
            await socket.send(orjson.dumps({**frame, "ref": ref}).decode())
        except BaseException:
            self.waiting.pop(ref, None)  # nobody will wait for its answer
            raise
        answer: dict[str, Any] = await asyncio.wait_for(waiter, 10)
        if answer["type"] != "sent":
            raise RuntimeError(f"error frame {answer['error'].get('reason')}")
        message: dict[str, Any] = answer["message"]
        return message


class GrpcReceiver(Receiver):
    async def session(self, stop: asyncio.Event, first: bool) -> None:
        async with grpc.aio.insecure_channel(self.endpoints.grpcs[self.person.at]) as channel:
            call = gateway_pb2_grpc.GatewayStub(channel).Connect(
                metadata=(("authorization", f"Bearer {self.person.token}"),)
            )
            ping = gateway_pb2.ConnectRequest(ping=gateway_pb2.PingFrame())
            pinging = asyncio.ensure_future(_every(PING_EVERY_S, lambda: call.write(ping)))
            try:
                async with asyncio.timeout(5):
                    await call.initial_metadata()
                ending = asyncio.ensure_future(stop.wait())
                reading = asyncio.ensure_future(self.read(call, first))
                done, _ = await asyncio.wait({ending, reading}, return_when=asyncio.FIRST_COMPLETED)
                for task in (ending, reading):
                    task.cancel()
                await asyncio.gather(ending, reading, return_exceptions=True)
                if reading in done:
                    reading.result()
            finally:
                pinging.cancel()
                call.cancel()

    async def read(self, call: Any, first: bool) -> None:
        # The stream is registered for delivery once its initial metadata came (x-session-id).
        await self.ready(first)
        async for response in call:
            if response.WhichOneof("frame") == "event" and response.event.WhichOneof("kind") == "message_new":
                message = response.event.message_new.message
                self.arrived(str(message.id), str(message.conversation_id), message.seq)


async def _every(seconds: float, act: Callable[[], Awaitable[None]]) -> None:
    """``act`` every ``seconds`` until cancelled or it fails (the connection it writes on ended)."""
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(seconds)
            await act()


# ---------------------------------------------------------------- the load


class Load:
    """The senders and readers: each person sends in its conversation at ``rate`` per second, one message at a
    time, and marks what it has read every ``MARK_EVERY_S``."""

    def __init__(self, endpoints: Endpoints, receivers: dict[int, Receiver], per_person_rate: float) -> None:
        self.endpoints = endpoints
        self.receivers = receivers
        self.interval = 1 / per_person_rate
        self.tally = Tally()
        self.tag = uuid.uuid4().hex[:8]

    async def sender(self, person: Person, stop: asyncio.Event) -> None:
        due, n = time.monotonic(), 0
        while not stop.is_set():
            now = time.monotonic()
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - now)
                continue
            await self.send_until_acked(person, f"{self.tag}-{person.index}-{n}")
            n += 1
            due = max(due + self.interval, time.monotonic() - BACKLOG_S)

    async def send_until_acked(self, person: Person, client_msg_id: str) -> None:
        first_try, attempts, backoff = time.monotonic(), 0, 0.05
        while True:
            attempts, at = attempts + 1, person.at
            try:
                message = await self.send_once(person, client_msg_id)
            except Exception as exc:  # every failure is retried, as a client does, and counted
                self.tally.failures.append((time.monotonic(), _reason(exc)))
                if not person.sends_over_ws and not isinstance(exc, Answered):  # no answer: try another instance
                    self.endpoints.unreachable(person, at)
                if time.monotonic() - first_try > RETRY_FOR_S:
                    self.tally.given_up += 1
                    return
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                continue
            ack = Ack(person.index, client_msg_id, message["id"], message["seq"], first_try, time.monotonic(), attempts)
            self.tally.acks.append(ack)
            return

    async def send_once(self, person: Person, client_msg_id: str) -> dict[str, Any]:
        if person.sends_over_ws:
            return await self.receivers[person.index].send(person.conversation, client_msg_id)
        body = b'{"client_msg_id":"%s","text":"chaos"}' % client_msg_id.encode()
        client = self.endpoints.client(person)
        raw = client.post(f"/v1/conversations/{person.conversation}/messages", body, person.auth)
        answer = await asyncio.wait_for(client.request(raw), 10)
        if answer.status not in (200, 201):
            raise Answered(f"HTTP {answer.status}")
        message: dict[str, Any] = orjson.loads(answer.body)["message"]
        return message

    async def reader(self, person: Person, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MARK_EVERY_S)
            seq = self.receivers[person.index].last_seq
            if seq > person.marked:
                with contextlib.suppress(Exception):
                    await mark(self.endpoints.client(person), person, seq)


async def mark(client: load.Client, person: Person, seq: int) -> None:
    """Mark ``seq`` read (``POST …/read``), keeping what was asked and what was acknowledged."""
    person.asked = max(person.asked, seq)
    raw = client.post(f"/v1/conversations/{person.conversation}/read", b'{"seq":%d}' % seq, person.auth)
    answer = await asyncio.wait_for(client.request(raw), 10)
    if answer.status != 204:
        raise Answered(f"HTTP {answer.status}")
    person.marked = max(person.marked, seq)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith(("HTTP ", "error frame")) else type(exc).__name__


# ---------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    act: Callable[[Chaos], Awaitable[None]]


@dataclass
class Happened:
    fault: Fault
    began: float
    ended: float
    whole: float = 0.0  # when every sender had been acknowledged again


class Chaos:
    """What the faults act on: the started system, the middleware's ``scripts/stack`` and the config."""

    def __init__(
        self, running: system.System, stack: Path, settings: conf.Settings, timing: Timing, database: Relay
    ) -> None:
        self.running = running
        self.stack = stack
        self.settings = settings
        self.timing = timing
        self.database = database

    async def middleware(self, *args: str) -> None:
        await self.script(self.stack, *args)

    async def cluster(self, name: str, *args: str) -> str:
        """Run ``scripts/<name>`` (``kafka-cluster``, ``redis-cluster``, ``mariadb-replica``), the sibling of the
        stack script; answers what it printed."""
        return await self.script(self.stack.parent / name, *args)

    async def script(self, path: Path, *args: str) -> str:
        # subprocess in a thread, not asyncio's: see ``system.System`` (gRPC's fork handlers crashed children).
        done = await asyncio.to_thread(
            subprocess.run, [str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300
        )
        said = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"{path} {' '.join(args)} exited with {done.returncode}:\n{said[-2000:]}")
        return said

    async def crash(self, *names: str) -> None:
        """SIGKILL of each of ``names`` at once, then a start of each, one after another."""
        for name in names:
            await self.running.kill(name)
        await asyncio.sleep(self.timing.down_s)
        for name in names:
            await self.running.launch(name)

    def first_instances(self) -> list[str]:
        """The first instance of each process that runs more than one."""
        return [name for name in self.running.plan if f"{name} 2" in self.running.plan]


async def _restart_middleware(chaos: Chaos, service: str) -> None:
    await chaos.middleware("kill", service)
    await chaos.middleware("start", service)


async def _flush_redis(chaos: Chaos) -> None:
    client = redis.Redis.from_url(chaos.settings.cache.url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


async def _delay_database(chaos: Chaos) -> None:
    chaos.database.delay(True)
    try:
        await asyncio.sleep(chaos.timing.pause_s)
    finally:
        chaos.database.delay(False)


async def _pause_chat(chaos: Chaos) -> None:
    chaos.running.signal("chat", signal.SIGSTOP)
    try:
        await asyncio.sleep(chaos.timing.pause_s)
    finally:
        chaos.running.signal("chat", signal.SIGCONT)


async def _kill_one_of_each(chaos: Chaos) -> None:
    await chaos.crash(*chaos.first_instances())


async def _rolling_restart(chaos: Chaos) -> None:
    """Every process, one at a time: SIGTERM, wait until it drained and exited, start it, wait until it is ready."""
    for name in list(chaos.running.plan):
        await chaos.running.terminate(name)
        await chaos.running.launch(name)


async def _kill_kafka_broker(chaos: Chaos) -> None:
    await chaos.cluster("kafka-cluster", "kill", "1")
    await asyncio.sleep(chaos.timing.down_s)
    await chaos.cluster("kafka-cluster", "start", "1")


async def _kill_redis_master(chaos: Chaos) -> None:
    """SIGKILL of a master; once its replica took its slots over (after the cluster's node timeout), a start of it
    (it rejoins as a replica)."""
    port = (await chaos.cluster("redis-cluster", "masters")).split()[0]
    await chaos.cluster("redis-cluster", "kill", port)
    async with asyncio.timeout(FAILOVER_TIMEOUT_S):
        while True:
            masters = (await chaos.cluster("redis-cluster", "masters")).split()
            if port not in masters and len(masters) == REDIS_MASTERS:
                break
            await asyncio.sleep(0.5)
    await chaos.cluster("redis-cluster", "start", port)


async def _stop_replica(chaos: Chaos) -> None:
    await chaos.cluster("mariadb-replica", "stop-replica")
    await asyncio.sleep(chaos.timing.pause_s)
    await chaos.cluster("mariadb-replica", "start-replica")


def _crash(name: str) -> Callable[[Chaos], Awaitable[None]]:
    async def act(chaos: Chaos) -> None:
        await chaos.crash(name)

    return act


def _middleware(service: str) -> Callable[[Chaos], Awaitable[None]]:
    async def act(chaos: Chaos) -> None:
        await _restart_middleware(chaos, service)

    return act


FAULTS = (
    Fault("chat paused", "SIGSTOP of chat, SIGCONT after the pause", _pause_chat),
    Fault("MariaDB delayed", "200 ms more each way to and from MariaDB, for the pause", _delay_database),
    Fault("persist job killed", "SIGKILL of `job persist`, then a start", _crash("job persist")),
    Fault("push job killed", "SIGKILL of `job push`, then a start", _crash("job push")),
    Fault("chat killed", "SIGKILL of chat, then a start", _crash("chat")),
    Fault("bff killed", "SIGKILL of the bff (every connection drops), then a start", _crash("bff")),
    Fault("Redis flushed", "FLUSHALL: every cache entry, route and limit gone at once", _flush_redis),
    Fault("Redis killed", "SIGKILL of redis-server, then a start", _middleware("redis")),
    Fault("MariaDB killed", "SIGKILL of mariadbd, then a start", _middleware("mariadb")),
    Fault("Kafka killed", "SIGKILL of the Kafka broker, then a start", _middleware("kafka")),
)  # fmt: skip
# On the cluster middleware (configs/cluster.yaml: scripts/kafka-cluster, redis-cluster, mariadb-replica).
CLUSTER_FAULTS = (
    Fault("Kafka broker killed", "SIGKILL of broker 1 of 3 (the topics' replicas on it), then a start",
          _kill_kafka_broker),
    Fault("Redis master killed", "SIGKILL of a Redis Cluster master; its replica takes over; then a start",
          _kill_redis_master),
    Fault("MariaDB replica stopped", "the read replica stopped for the pause (reads go to the primary), then started",
          _stop_replica),
)  # fmt: skip
# With two or more instances of every process (``--instances``).
WIDE_FAULTS = (
    Fault("one of each killed", "SIGKILL of one instance of every process at once, then a start of each",
          _kill_one_of_each),
    Fault("rolling restart", "every process in turn: SIGTERM (drained), a start, ready before the next",
          _rolling_restart),
)  # fmt: skip

NETWORK_DELAY = (
    "The network delay is not tc netem: this machine's kernel has no netem queueing discipline (`tc qdisc add dev lo"
    ' root netem delay 50ms`, in a network namespace of its own, answers "Specified qdisc kind is unknown") and no'
    " module to load. Every process reaches MariaDB through a relay of the tool instead, which holds each chunk for"
    " the delay during the fault."
)


class Relay:
    """The relay process (``tidings.bench.relay``) every Tidings process reaches MariaDB through."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, host: str, port: int, delay_s: float) -> Relay:
        argv = [sys.executable, "-m", "tidings.bench.relay", host, str(port), str(delay_s)]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE)  # noqa: ASYNC220, S603 - our own module
        assert process.stdout is not None
        return cls(process, int(await asyncio.to_thread(process.stdout.readline)))

    def delay(self, on: bool) -> None:
        self.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    async def close(self) -> None:
        self.process.terminate()
        await asyncio.to_thread(self.process.wait)


# ---------------------------------------------------------------- the run


@dataclass
class Options:
    profile: Profile
    rate: float
    people: int
    config: Path
    stack: Path
    faults: list[str]
    logs: Path | None = None
    instances: int = 1


@dataclass
class Outcome:
    tally: Tally
    people: list[Person]
    receivers: dict[int, Receiver]
    happened: list[Happened]
    began: float  # when the load began (monotonic): the faults' times count from it
    load_s: float
    client_cpu_s: float
    described: str
    checks: dict[str, Any]


async def run(options: Options) -> Outcome:
    timing = TIMINGS[options.profile]
    settings = conf.load(options.config)
    wide, cluster = options.instances > 1, settings.cache.cluster
    defaults = [*(WIDE_FAULTS if wide else ()), *(CLUSTER_FAULTS if cluster else ())] or list(FAULTS)
    faults = [f for f in FAULTS + WIDE_FAULTS + CLUSTER_FAULTS if f.name in options.faults] or defaults
    # Wide, the task module too: every module runs N-wide.
    modules = [*system.MESSAGE_PATH, *(["task"] if wide else [])]
    database = make_url(settings.database.url)
    proxy = await Relay.start(database.host or "127.0.0.1", database.port or 3306, DATABASE_DELAY_S)
    env = {
        "TIDINGS_AUTH__ACCESS_TTL_S": "7200",  # no token expires during the run: that is another test
        "TIDINGS_DATABASE__URL": database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
    }
    async with contextlib.AsyncExitStack() as closing:
        closing.push_async_callback(proxy.close)
        running = await closing.enter_async_context(
            system.start(
                options.config, modules, jobs=JOBS, instances=options.instances, env=env, keep_logs=options.logs
            )
        )
        chaos = Chaos(running, options.stack, settings, timing, proxy)
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            people = await _sign_up(http, options.people)
        endpoints = Endpoints.of(running)
        # Every other person is online, one in each direct pair (the others send over REST and read nothing, as
        # people whose app is closed); of those online, every other one on a WebSocket (and every other of them
        # sends on it), the rest on the gRPC stream. People spread over the bff instances, the two of a pair on
        # different ones (where there are two or more).
        receivers: dict[int, Receiver] = {
            p.index: (WebSocketReceiver if p.index % 4 == 0 else GrpcReceiver)(p, endpoints)
            for p in people
            if p.index % 2 == 0
        }
        for person in people:
            person.sends_over_ws = person.index % 8 == 0
            person.at = (person.index // 2 + person.index) % options.instances
        client = endpoints.clients[0]
        load_ = Load(endpoints, receivers, options.rate / len(people))
        stop_receiving, stop_sending = asyncio.Event(), asyncio.Event()
        happened: list[Happened] = []
        async with asyncio.TaskGroup() as connections:
            for receiver in receivers.values():
                connections.create_task(receiver.keep(stop_receiving))
            await asyncio.wait_for(asyncio.gather(*(r.connected.wait() for r in receivers.values())), 60)
            cpu_before, began = system.cpu_seconds(os.getpid()), time.monotonic()
            async with asyncio.TaskGroup() as group:
                for person in people:
                    group.create_task(load_.sender(person, stop_sending))
                    if person.index in receivers:
                        group.create_task(load_.reader(person, stop_sending))
                await asyncio.sleep(timing.settle_s)
                for fault in faults:
                    start = time.monotonic()
                    await fault.act(chaos)
                    happened.append(Happened(fault, start - began, time.monotonic() - began))
                    await recovered(load_.tally, people, after=time.monotonic())
                    happened[-1].whole = time.monotonic() - began
                    await asyncio.sleep(timing.settle_s)
                stop_sending.set()
            load_s = time.monotonic() - began
            client_cpu = system.cpu_seconds(os.getpid()) - cpu_before
            checks = await verify(client, people, receivers, load_.tally, load_s + began)
            checks["closes"] = await closes([url for name, url in running.metrics.items() if name.startswith("bff")])
            stop_receiving.set()
        endpoints.close()
        return Outcome(
            load_.tally,
            people,
            receivers,
            happened,
            began,
            load_s,
            client_cpu,
            system.describe(options.config, [*running.plan]),
            checks,
        )


async def closes(metrics_urls: list[str]) -> dict[str, float]:
    """The connections the bff instances ended, by reason, from their ``/metrics`` (since each last started)."""
    found: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        lines_ = [line for url in metrics_urls for line in (await http.get(url)).text.splitlines()]
        for line in lines_:
            if line.startswith("tidings_bff_connection_closes_total{"):
                labels, _, value = line.rpartition(" ")
                reason = labels.partition('reason="')[2].partition('"')[0]
                found[reason] = found.get(reason, 0.0) + float(value)
    return found


async def recovered(tally: Tally, people: list[Person], after: float) -> None:
    """Until every person had a send acknowledged that began ``after`` (bounded): the next fault finds the system
    whole again, and each fault's row tells its own recovery."""
    deadline = after + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        again = {a.person for a in reversed(tally.acks) if a.first_try_at >= after}
        if len(again) >= len(people):
            return
        await asyncio.sleep(0.2)


async def _sign_up(http: httpx.AsyncClient, count: int) -> list[Person]:
    """``count`` people (a multiple of the group size), half in direct pairs and half in groups of four."""
    tag = uuid.uuid4().hex[:6]
    people = []
    for n in range(count):
        answer = await http.post("/v1/auth/register", json={"username": f"c{tag}_{n}", "password": "chaos password"})
        answer.raise_for_status()
        people.append(Person(n, str(answer.json()["user"]["id"]), answer.json()["access_token"]))
    half = count // 2 // GROUP_SIZE * GROUP_SIZE
    for a, b in zip(people[:half:2], people[1:half:2], strict=True):
        opened = await http.post(
            "/v1/conversations",
            json={"kind": "direct", "peer_id": b.id},
            headers={"Authorization": f"Bearer {a.token}"},
        )
        opened.raise_for_status()
        a.conversation = b.conversation = str(opened.json()["id"])
    for first in range(half, count - GROUP_SIZE + 1, GROUP_SIZE):
        owner, *others = people[first : first + GROUP_SIZE]
        opened = await http.post(
            "/v1/conversations",
            json={"kind": "group", "title": "chaos", "member_ids": [o.id for o in others]},
            headers={"Authorization": f"Bearer {owner.token}"},
        )
        opened.raise_for_status()
        for member in (owner, *others):
            member.conversation = str(opened.json()["id"])
    return [p for p in people if p.conversation]


# ---------------------------------------------------------------- the checks


async def verify(
    client: load.Client, people: list[Person], receivers: dict[int, Receiver], tally: Tally, load_end: float
) -> dict[str, Any]:
    """Every check of the module docstring; answers the counts (and how long settling took)."""
    index = {p.index: p for p in people}
    members: dict[str, list[Person]] = {}
    for person in people:
        members.setdefault(person.conversation, []).append(person)
    acked: dict[str, list[Ack]] = {c: [] for c in members}
    for ack in tally.acks:
        acked[index[ack.person].conversation].append(ack)
    histories = await persisted(client, members, acked)
    found: dict[str, Any] = {"persisted_after_s": time.monotonic() - load_end}
    found |= stored_once(histories, acked, index)
    found["out_of_order"] = out_of_order(tally.acks)
    # Each receiver fetches the history again from every point where a connection of it ended: a catch-up may have
    # run before all it missed was persisted.
    connected = [asyncio.wait_for(r.connected.wait(), SETTLE_TIMEOUT_S) for r in receivers.values()]
    await asyncio.gather(*connected, return_exceptions=True)
    await settled(receivers)
    for receiver in receivers.values():
        for point in sorted(set(receiver.resume_points)):
            await receiver.catch_up(point)
    found["caught_up_after_s"] = time.monotonic() - load_end
    found |= delivered(receivers, acked)
    found |= await unread(client, people)
    return found


async def persisted(
    client: load.Client, members: dict[str, list[Person]], acked: dict[str, list[Ack]]
) -> dict[str, list[dict[str, Any]]]:
    """Each conversation's whole history, once it holds the highest acknowledged seq (or the settling ran out)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    histories = {}
    for conversation, people in members.items():
        highest = max((a.seq for a in acked[conversation]), default=0)
        while True:
            histories[conversation] = await _history(client, people[0], conversation)
            newest = max((m["seq"] for m in histories[conversation]), default=0)
            if newest >= highest or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    return histories


def stored_once(
    histories: dict[str, list[dict[str, Any]]], acked: dict[str, list[Ack]], index: dict[int, Person]
) -> dict[str, int]:
    """Every acknowledged message stored once, with the id and seq it was acknowledged with."""
    lost = duplicated = changed = unacknowledged = 0
    for conversation, history in histories.items():
        stored: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for message in history:
            stored.setdefault((message["sender_id"], message["client_msg_id"]), []).append(message)
        duplicated += sum(len(copies) - 1 for copies in stored.values())
        keys = {(index[ack.person].id, ack.client_msg_id): ack for ack in acked[conversation]}
        for key, ack in keys.items():
            copies = stored.get(key, [])
            lost += not copies
            changed += bool(copies) and (copies[0]["id"], copies[0]["seq"]) != (ack.id, ack.seq)
        unacknowledged += sum(1 for key in stored if key not in keys)
    return {"lost": lost, "duplicated": duplicated, "changed": changed, "unacknowledged_stored": unacknowledged}


def out_of_order(acks: list[Ack]) -> int:
    """Acknowledgements whose seq is not above the same sender's previous one (each sends in one conversation)."""
    wrong, last = 0, dict[int, int]()
    for ack in sorted(acks, key=lambda a: a.acked_at):
        wrong += ack.seq <= last.get(ack.person, 0)
        last[ack.person] = ack.seq
    return wrong


def delivered(receivers: dict[int, Receiver], acked: dict[str, list[Ack]]) -> dict[str, Any]:
    """What each receiver got of its conversation: live, missed while connected (with when each was acknowledged,
    to tell which fault it follows), missing after catching up. Missed while connected: acknowledged while the
    connection was up, and delivered live to another member ``DELIVERY_GRACE_S`` before the connection ended, but
    not to it."""
    first_live: dict[str, float] = {}
    for receiver in receivers.values():
        for message_id, at in receiver.live.items():
            first_live[message_id] = min(at, first_live.get(message_id, at))
    missing = live = due = fetched = 0
    missed_live: list[float] = []
    for receiver in receivers.values():
        fetched += receiver.fetched
        for ack in acked[receiver.person.conversation]:
            due += 1
            missing += ack.id not in receiver.seen
            if ack.id in receiver.live:
                live += 1
                continue
            reached = first_live.get(ack.id)
            if reached is not None and any(
                s <= ack.acked_at and reached + DELIVERY_GRACE_S <= e for s, e in receiver.spans
            ):
                missed_live.append(ack.acked_at)
    return {
        "missing": missing,
        "missed_live": len(missed_live),
        "missed_live_at": missed_live,
        "live": live,
        "deliveries": due,
        "fetched": fetched,
    }


async def settled(receivers: dict[int, Receiver]) -> None:
    """Until no live delivery arrived for ``QUIET_S`` (bounded): a catch-up before then would fetch what is still on
    its way and count it as fetched rather than delivered."""
    deadline, count, quiet_since = time.monotonic() + SETTLE_TIMEOUT_S, -1, time.monotonic()
    while time.monotonic() < deadline:
        now, seen = time.monotonic(), sum(len(r.live) for r in receivers.values())
        if seen != count:
            count, quiet_since = seen, now
        elif now - quiet_since >= QUIET_S:
            return
        await asyncio.sleep(0.2)


async def unread(client: load.Client, people: list[Person]) -> dict[str, int]:
    """Each member's counts as its marks left them, then after marking the newest seq."""
    wrong_unread = wrong_mark = 0
    for person in people:
        view = await _conversation(client, person)
        wrong_unread += view["unread_count"] != view["max_seq"] - view["read_seq"]
        # A mark above max_seq is clamped (the newest seq seen live may not be persisted yet): only above is wrong.
        wrong_mark += view["read_seq"] > max(person.asked, person.marked)
        await mark(client, person, view["max_seq"])
        after = await _conversation(client, person)
        wrong_unread += after["unread_count"] != 0 or after["read_seq"] != view["max_seq"]
    return {"wrong_unread": wrong_unread, "wrong_mark": wrong_mark, "members": len(people)}


async def _history(client: load.Client, member: Person, conversation: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        raw = (
            f"GET /v1/conversations/{conversation}/messages?after_seq={after}&limit={PAGE} HTTP/1.1\r\n"
            f"Host: {client.host_header}\r\n{member.auth}\r\n"
        ).encode()
        answer = await client.request(raw)
        if answer.status != 200:
            raise RuntimeError(f"history answered {answer.status}: {answer.body[:200]!r}")
        page = orjson.loads(answer.body)
        found += page["messages"]
        if not page["has_more"] or not page["messages"]:
            return found
        after = page["messages"][-1]["seq"]


async def _conversation(client: load.Client, member: Person) -> dict[str, Any]:
    raw = (
        f"GET /v1/conversations/{member.conversation} HTTP/1.1\r\nHost: {client.host_header}\r\n{member.auth}\r\n"
    ).encode()
    answer = await client.request(raw)
    if answer.status != 200:
        raise RuntimeError(f"conversation answered {answer.status}")
    view: dict[str, Any] = orjson.loads(answer.body)
    return view


# ---------------------------------------------------------------- the report


def passed(checks: dict[str, Any], tally: Tally) -> bool:
    """The contract's promises: nothing acknowledged lost, stored twice, changed or reordered; every receiver has
    every message once caught up; unread counts exact. Deliveries missed while connected are reported beside them:
    the contract lets the server end a connection (too slow, route lost, stopping) and the client catch up."""
    broken = ("lost", "duplicated", "changed", "out_of_order", "missing", "wrong_unread", "wrong_mark")
    return all(checks[name] == 0 for name in broken) and tally.given_up == 0


def windows(outcome: Outcome) -> list[str]:
    """One row per fault: what happened and what the senders and receivers saw from its start until the next one."""
    rows = []
    acks, failures, start0 = outcome.tally.acks, outcome.tally.failures, outcome.began
    missed = [at - start0 for at in outcome.checks["missed_live_at"]]
    first = outcome.happened[0].began if outcome.happened else outcome.load_s
    steady = [a for a in acks if a.first_try_at - start0 < first]
    rows.append(
        f"| none (steady load before the first fault) | | 0.0 | | {len(steady)} "
        f"| {sum(1 for at, _ in failures if at - start0 < first)} "
        f"| {max((a.acked_at - a.first_try_at for a in steady), default=0.0):.2f} | | "
        f"{sum(1 for at in missed if at < first)} |"
    )
    for n, h in enumerate(outcome.happened):
        until = outcome.happened[n + 1].began if n + 1 < len(outcome.happened) else outcome.load_s
        inside = [a for a in acks if h.began <= a.first_try_at - start0 < until]
        reasons = Counter(why for at, why in failures if h.began <= at - start0 < until)
        failed = f"{sum(reasons.values())}" + (
            f" ({', '.join(f'{n} {why}' for why, n in reasons.most_common(3))})" if reasons else ""
        )
        slowest = max((a.acked_at - a.first_try_at for a in inside), default=0.0)
        after_end = [a for a in acks if a.first_try_at - start0 >= h.ended]
        first_by_person: dict[int, float] = {}
        for a in after_end:
            first_by_person[a.person] = min(first_by_person.get(a.person, float("inf")), a.acked_at - start0)
        recovered = max(first_by_person.values(), default=float("nan")) - h.ended
        rows.append(
            f"| {h.fault.name} | {h.fault.what} | {h.began:.1f} | {h.ended - h.began:.1f} | {len(inside)} | {failed} "
            f"| {slowest:.2f} | {recovered:.2f} | {sum(1 for at in missed if h.began <= at < until)} |"
        )
    return rows


def steady_rate(outcome: Outcome) -> tuple[float, float]:
    """Acknowledgements per second in the steady stretches (before the first fault, and from each fault's recovery
    until the next one), and how long those stretches were in all."""
    ends = [h.began for h in outcome.happened] + [outcome.load_s]
    starts = [0.0] + [h.whole for h in outcome.happened]
    stretches = [(a, b) for a, b in zip(starts, ends, strict=True) if b > a]
    length = sum(b - a for a, b in stretches)
    acked = sum(1 for ack in outcome.tally.acks if any(a <= ack.acked_at - outcome.began < b for a, b in stretches))
    return (acked / length if length else 0.0), length


def report(outcome: Outcome, options: Options, load_before: float, plot: Path) -> str:
    checks, tally = outcome.checks, outcome.tally
    verdict = "nothing lost, duplicated or reordered" if passed(checks, tally) else "A CHECK FAILED"
    acked = len(tally.acks)
    reasons = Counter(reason for _, reason in tally.failures)
    over_ws = sum(1 for p in outcome.people if p.sends_over_ws)
    grpc_people = sum(1 for r in outcome.receivers.values() if isinstance(r, GrpcReceiver))
    reconnects = sum(r.reconnects for r in outcome.receivers.values())
    latencies = sorted(a.acked_at - a.first_try_at for a in tally.acks)
    timing = TIMINGS[options.profile]
    steady, steady_s = steady_rate(outcome)
    section = [
        f"## Chaos at {record.commit()} ({options.profile.value} profile): {verdict}",
        "",
        f"{record.machine()}; {outcome.described}; the job module as two processes (`job persist`: persist, index,"
        f" invalidate; `job push`: push); load average before: {load_before:.2f}.",
        "",
        f"Load: {len(outcome.people)} people in direct pairs and groups of {GROUP_SIZE}, each sending in its"
        f" conversation one message at a time ({len(outcome.people) - over_ws} over REST, {over_ws} as WebSocket"
        f" `send` frames), {options.rate:g} msgs/s in all; {len(outcome.receivers)} are online:"
        f" {len(outcome.receivers) - grpc_people} on a WebSocket, {grpc_people} on the gRPC stream, each marking what"
        f" it read every {MARK_EVERY_S:g} s (the others read nothing: their unread counts grow, and are checked too)."
        f" A failed send is retried with the same `client_msg_id`. {timing.settle_s:g} s of steady load before,"
        f" between and after the faults.",
        "",
        f"- acknowledged: **{acked} messages in {outcome.load_s:.0f} s, {acked / outcome.load_s:.0f} msgs/s**"
        f" (p50 {statistics.median(latencies) * 1000 if latencies else 0:.0f} ms, max"
        f" {latencies[-1] if latencies else 0:.1f} s from the first try to the acknowledgement)",
        f"- in the steady stretches (before the first fault, and from each recovery to the next fault; {steady_s:.0f} s"
        f" in all): **{steady:.0f} msgs/s** acknowledged",
        f"- failed attempts, each retried: {len(tally.failures)}"
        + (f" ({', '.join(f'{n} {r}' for r, n in reasons.most_common(6))})" if reasons else "")
        + f"; sends given up after {RETRY_FOR_S:g} s: {tally.given_up}",
        f"- load client CPU ({BENCH_CLIENT}): {outcome.client_cpu_s:.1f} s,"
        f" {outcome.client_cpu_s / max(1, acked) * 1e6:.0f} µs per acknowledged message",
        "",
        "| fault | what | at (s) | took (s) | sends begun until the next | failed attempts | slowest ack (s) |"
        " every sender acked again after (s) | missed while connected |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *windows(outcome),
        "",
        f"![acknowledgements per second over the run]({plot.relative_to(plot.parent.parent)})",
        "",
        "| check | result |",
        "|---|---|",
        f"| acknowledged messages lost | {checks['lost']} |",
        f"| stored twice | {checks['duplicated']} |",
        f"| stored with another id or seq than acknowledged | {checks['changed']} |",
        f"| out of order (a sender's seq not above its previous ack's) | {checks['out_of_order']} |",
        f"| stored but never acknowledged (a send given up) | {checks['unacknowledged_stored']} |",
        f"| all persisted after the load ended (s) | {checks['persisted_after_s']:.2f} |",
        f"| deliveries due (acknowledged messages x members) | {checks['deliveries']} |",
        f"| arrived live | {checks['live']} |",
        f"| missed while connected (acknowledged while the connection was up, and delivered to another member at"
        f" least {DELIVERY_GRACE_S:g} s before it ended) | {checks['missed_live']} |",
        f"| fetched from history after a reconnect | {checks['fetched']} (over {reconnects} reconnects) |",
        "| connections the bff ended since it last started, by reason | "
        + (", ".join(f"{reason} {n:.0f}" for reason, n in sorted(checks["closes"].items())) or "none")
        + " |",
        f"| missing after catching up | {checks['missing']} |",
        f"| every receiver caught up after the load ended (s) | {checks['caught_up_after_s']:.2f} |",
        f"| members whose unread_count is not max_seq - read_seq, or not 0 after marking the newest |"
        f" {checks['wrong_unread']} of {checks['members']} |",
        f"| members whose read_seq is above every mark they set | {checks['wrong_mark']} of {checks['members']} |",
        "",
        NETWORK_DELAY,
        "",
    ]
    return "\n".join(section)


def plot_svg(outcome: Outcome) -> str:
    start0 = outcome.began
    seconds = int(outcome.load_s) + 1
    acks, failed = [0.0] * seconds, [0.0] * seconds
    for a in outcome.tally.acks:
        acks[min(seconds - 1, max(0, int(a.acked_at - start0)))] += 1
    for at, _ in outcome.tally.failures:
        failed[min(seconds - 1, max(0, int(at - start0)))] += 1
    return lines(
        "Acknowledged sends and failed attempts per second (faults in the table)",
        list(range(seconds)),
        {"acknowledged": acks, "failed attempts": failed},
    )


def command(
    profile: Annotated[
        Profile, typer.Option(help="full: minutes, time to recover between faults; short: a minute.")
    ] = (Profile.full),
    rate: Annotated[
        float, typer.Option(help="Messages per second in all (spread evenly over the people).", min=1)
    ] = 500,
    people: Annotated[int, typer.Option(help="People (half in direct pairs, half in groups of four).", min=8)] = 96,
    fault: Annotated[list[str] | None, typer.Option(help="Only these faults (by name; repeatable).")] = None,
    config: ConfigOption = Path("configs/stack.yaml"),
    stack: Annotated[Path, typer.Option(help="The script that kills and starts the middleware.")] = Path(
        "scripts/stack"
    ),
    output: Annotated[Path, typer.Option(help="Markdown file the results are appended to.")] = Path(
        "docs/RELIABILITY.md"
    ),
    logs: Annotated[Path | None, typer.Option(help="Copy the processes' logs into this folder at the end.")] = None,
    instances: Annotated[
        int, typer.Option(help="Instances of every process; 2 or more runs the faults of many instances.", min=1, max=4)
    ] = 1,
) -> None:
    """Faults under load (kills, restarts, a pause, a flush); fails on any loss, duplicate, reordering or miss."""
    names = {f.name for f in FAULTS + CLUSTER_FAULTS + (WIDE_FAULTS if instances > 1 else ())}
    if unknown := [f for f in fault or [] if f not in names]:
        raise typer.BadParameter(
            f"unknown fault {unknown[0]!r} with {instances} instance(s); one of: {', '.join(sorted(names))}",
            param_hint="--fault",
        )
    if conf.load(config).bus.kind != "kafka":
        raise typer.BadParameter(
            "chaos needs the middleware: a config on Kafka (configs/stack.yaml)", param_hint="--config"
        )
    options = Options(profile, rate, people, config, stack, list(fault or []), logs, instances)
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores with the system under faults
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        outcome = runner.run(run(options))
    # One file per commit, profile, config and width: runs of one commit on other shapes keep their own plots.
    shape = ("" if config.stem == "stack" else f"-{config.stem}") + (f"-x{instances}" if instances > 1 else "")
    plot = output.parent / "img" / f"chaos-{record.commit().split()[0]}-{profile.value}{shape}.svg"
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot.write_text(plot_svg(outcome))
    section = report(outcome, options, load_before, plot)
    record.append(output, section, RELIABILITY_HEADER)
    typer.echo(section)
    if not passed(outcome.checks, outcome.tally):
        raise typer.Exit(1)
