"""``tidings soak``: a steady load for minutes, with people connecting and disconnecting all along, while every
process's memory, open descriptors and event-loop tasks, the consumers' lag and the database pool are sampled every
``--sample`` seconds. A leak shows as growth under a load that does not grow: the run fails when a figure ends
above its bound, and writes its table and a plot (SVG) into ``docs/RELIABILITY.md`` and ``docs/img/``.

The bounds compare the end of the run with its start once warmed up (the first samples are the warm-up: caches
fill, pools open, the first connections are made): the median of the last third of the samples against the median
of the first third after the warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated

import httpx
import typer
from websockets.asyncio.client import ClientConnection, connect

from tidings.bench import load, record, system
from tidings.bench.system import ConfigOption, Shape, ShapeOption
from tidings.pkg.app import event_loop_factory
from tidings.pkg.charts import lines

WARM_UP_SAMPLES = 2
RELIABILITY_HEADER = (
    "# Reliability\n\nWritten by `tidings soak` and `tidings chaos`; every number below was measured, none typed.\n"
)


@dataclass(frozen=True)
class Bounds:
    """How much each figure may grow from the start (after the warm-up) to the end of the run."""

    rss_pct: float = 20.0
    fds: int = 50
    tasks: int = 200
    lag: int = 2000


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_kib: dict[str, int]
    fds: dict[str, int]
    tasks: dict[str, float]
    lag: float
    pool_in_use: float
    sent: int
    connects: int


@dataclass
class Load:
    sent: int = 0
    failed: int = 0
    connects: int = 0
    sockets: list[ClientConnection] = field(default_factory=list)


async def run(minutes: float, rate: float, users: int, churn_per_s: float, sample_s: float, config: Path,
              shape: Shape) -> tuple[list[Sample], str]:  # fmt: skip
    started = system.modules(shape, config)
    async with system.start(config, started, env=tokens_outlast(minutes)) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            people = await _sign_up(http, users)
            rooms = await _pair_up(http, people)
        state = Load()
        client = load.Client(running.url, max_connections=16)
        samples: list[Sample] = []
        deadline = time.monotonic() + minutes * 60
        async with asyncio.TaskGroup() as group:
            group.create_task(_send(client, rooms, rate, deadline, state))
            group.create_task(_churn(running.url, people, churn_per_s, deadline, state))
            group.create_task(_sample(running, sample_s, deadline, state, samples))
        for socket in state.sockets:
            with contextlib.suppress(Exception):
                await socket.close()
        return samples, system.describe(config, started)


def tokens_outlast(minutes: float) -> dict[str, str]:
    """Settings under which the people's access tokens outlast the run: they reconnect with the token they signed
    up with, and a run longer than the configured lifetime would end in 401s (a soak measures growth, not renewal)."""
    return {"TIDINGS_AUTH__ACCESS_TTL_S": str(min(86_400, int(minutes * 60) + 600))}


async def _sign_up(http: httpx.AsyncClient, count: int) -> list[tuple[str, str]]:
    tag = uuid.uuid4().hex[:6]
    found = []
    for n in range(count):
        answer = await http.post("/v1/auth/register", json={"username": f"k{tag}_{n}", "password": "soak password"})
        answer.raise_for_status()
        found.append((str(answer.json()["user"]["id"]), answer.json()["access_token"]))
    return found


async def _pair_up(http: httpx.AsyncClient, people: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A direct conversation for each neighbouring pair: (conversation id, the sender's token)."""
    rooms = []
    for (_, token), (peer, _) in zip(people, people[1:] + people[:1], strict=True):
        answer = await http.post(
            "/v1/conversations", json={"kind": "direct", "peer_id": peer}, headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        rooms.append((str(answer.json()["id"]), token))
    return rooms


async def _send(client: load.Client, rooms: list[tuple[str, str]], rate: float, deadline: float, state: Load) -> None:
    """Open loop: one send every ``1 / rate`` seconds, round the conversations, each in flight on its own."""
    pending: set[asyncio.Task[None]] = set()
    interval, due, n = 1 / rate, time.monotonic(), 0
    while due < deadline:
        conversation, token = rooms[n % len(rooms)]
        body = b'{"client_msg_id":"soak-%d","text":"soak"}' % n
        raw = client.post(f"/v1/conversations/{conversation}/messages", body, f"Authorization: Bearer {token}\r\n")
        task = asyncio.create_task(_one(client, raw, state))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
        due += interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    await asyncio.gather(*pending)


async def _one(client: load.Client, raw: bytes, state: Load) -> None:
    try:
        answer = await client.request(raw)
    except (OSError, load.ProtocolViolation):
        state.failed += 1
        return
    if answer.status == 201:
        state.sent += 1
    else:
        state.failed += 1


async def _churn(url: str, people: list[tuple[str, str]], per_s: float, deadline: float, state: Load) -> None:
    """One WebSocket per person, then ``per_s`` a second closed and opened again (a person leaving and coming back),
    each read until it closes, as a client would."""
    ws_url = url.replace("http", "ws", 1) + "/v1/ws?token="
    readers: set[asyncio.Task[None]] = set()

    async def open_one(token: str) -> ClientConnection:
        socket = await connect(ws_url + token, max_size=None)
        state.connects += 1
        task = asyncio.create_task(_drain(socket))
        readers.add(task)
        task.add_done_callback(readers.discard)
        return socket

    state.sockets = [await open_one(token) for _, token in people]
    n = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(1 / per_s)
        index = n % len(people)
        await state.sockets[index].close()
        state.sockets[index] = await open_one(people[index][1])
        n += 1
    for socket in state.sockets:
        await socket.close()
    await asyncio.gather(*readers)


async def _drain(socket: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for _ in socket:
            pass


async def _sample(running: system.System, every_s: float, deadline: float, state: Load, into: list[Sample]) -> None:
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            scraped = {name: await _scrape(http, url) for name, url in running.metrics.items()}
            into.append(
                Sample(
                    at_s=time.monotonic() - start,
                    rss_kib={name: system.rss_kib(pid) for name, pid in running.pids.items()},
                    fds={name: len(os.listdir(f"/proc/{pid}/fd")) for name, pid in running.pids.items()},
                    tasks={name: sum(found.get("tidings_asyncio_tasks", [0.0])) for name, found in scraped.items()},
                    lag=sum(sum(found.get("tidings_bus_consumer_lag", [])) for found in scraped.values()),
                    pool_in_use=sum(
                        sum(found.get("tidings_db_pool_connections_in_use", [])) for found in scraped.values()
                    ),
                    sent=state.sent,
                    connects=state.connects,
                )
            )
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(min(every_s, max(0.0, deadline - time.monotonic())))


async def _scrape(http: httpx.AsyncClient, url: str) -> dict[str, list[float]]:
    """Each metric's values (one per label set) from a ``/metrics`` page."""
    found: dict[str, list[float]] = {}
    for line in (await http.get(url)).text.splitlines():
        if line and not line.startswith("#"):
            name_and_labels, _, value = line.rpartition(" ")
            found.setdefault(name_and_labels.partition("{")[0], []).append(float(value))
    return found


@dataclass(frozen=True)
class Growth:
    figure: str
    start: float
    end: float
    bound: str
    within: bool


def growth(samples: Sequence[Sample], bounds: Bounds) -> list[Growth]:
    """Each figure's growth from the start (after the warm-up) to the end, and whether it stays within its bound."""
    steady = list(samples[WARM_UP_SAMPLES:]) or list(samples)
    third = max(1, len(steady) // 3)
    head, tail = steady[:third], steady[-third:]

    def grew(figure: str, read: Callable[[Sample], float], bound: str, allowed: Callable[[float], float]) -> Growth:
        start, end = _median(head, read), _median(tail, read)
        return Growth(figure, start, end, bound, end <= allowed(start))

    found = []
    for name in samples[0].rss_kib:
        found += [
            grew(f"{name} RSS (MiB)", partial(_rss_mib, name), f"+{bounds.rss_pct:g}%",
                 lambda start: start * (1 + bounds.rss_pct / 100)),
            grew(f"{name} open descriptors", partial(_fds, name), f"+{bounds.fds}", lambda start: start + bounds.fds),
            grew(f"{name} event-loop tasks", partial(_tasks, name), f"+{bounds.tasks}",
                 lambda start: start + bounds.tasks),
        ]  # fmt: skip
    found.append(grew("consumer lag (records)", lambda s: s.lag, f"+{bounds.lag}", lambda start: start + bounds.lag))
    found.append(grew("database connections in use", lambda s: s.pool_in_use, "(reported)", lambda _: float("inf")))
    return found


def _rss_mib(name: str, sample: Sample) -> float:
    return sample.rss_kib[name] / 1024


def _fds(name: str, sample: Sample) -> float:
    return sample.fds[name]


def _tasks(name: str, sample: Sample) -> float:
    return sample.tasks[name]


def _median(samples: Sequence[Sample], value: Callable[[Sample], float]) -> float:
    return float(statistics.median(value(sample) for sample in samples))


def report(
    samples: list[Sample], found: list[Growth], described: str, settings: str, plot: Path, load_before: float
) -> str:
    verdict = "within every bound" if all(g.within for g in found) else "GREW BEYOND A BOUND"
    last = samples[-1]
    lines_ = [
        f"## Soak at {record.commit()}: {verdict}",
        "",
        f"{record.machine()}; {described}; {settings}. {last.sent} messages sent, {last.connects} WebSocket connects "
        f"over {last.at_s / 60:.1f} minutes; load average before: {load_before:.2f}.",
        "",
        f"![memory and descriptors over the run]({plot.relative_to(plot.parent.parent)})",
        "",
        "| figure | start (median, after warm-up) | end (median) | bound | within |",
        "|---|---:|---:|---|---|",
        *(f"| {g.figure} | {g.start:.1f} | {g.end:.1f} | {g.bound} | {'yes' if g.within else 'NO'} |" for g in found),
        "",
    ]
    return "\n".join(lines_)


def command(
    minutes: Annotated[float, typer.Option(help="How long the load runs.", min=0.2)] = 30,
    rate: Annotated[float, typer.Option(help="Messages per second sent (open loop).", min=1)] = 50,
    users: Annotated[int, typer.Option(help="People, each with a WebSocket, in direct pairs.", min=2)] = 40,
    churn: Annotated[float, typer.Option(help="WebSockets closed and opened again per second.", min=0.1)] = 2,
    sample: Annotated[float, typer.Option(help="Seconds between samples.", min=1)] = 10,
    config: ConfigOption = Path("configs/stack.yaml"),
    shape: ShapeOption = Shape.auto,
    output: Annotated[Path, typer.Option(help="Markdown file the results are appended to.")] = Path(
        "docs/RELIABILITY.md"
    ),
) -> None:
    """Steady load with connects and disconnects; fails when memory, descriptors, tasks or lag keep growing."""
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores with the system soaked
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        samples, described = runner.run(run(minutes, rate, users, churn, sample, config, shape))
    found = growth(samples, Bounds())
    plot = output.parent / "img" / f"soak-{record.commit().split()[0]}.svg"
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot.write_text(
        lines(
            "Resident memory (MiB) over the run",
            [s.at_s / 60 for s in samples],
            {name: [s.rss_kib[name] / 1024 for s in samples] for name in samples[0].rss_kib},
        )
    )
    settings = f"{rate:g} msgs/s, {users} people, {churn:g} reconnects/s, a sample every {sample:g} s"
    section = report(samples, found, described, settings, plot, load_before)
    record.append(output, section, RELIABILITY_HEADER)
    typer.echo(section)
    if not all(g.within for g in found):
        raise typer.Exit(1)
