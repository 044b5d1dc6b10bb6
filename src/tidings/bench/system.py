"""The system a benchmark measures: Tidings processes on free ports in a scratch directory, and their ``/proc`` numbers.

Every benchmark that starts its own system does it here, so all of them start it the same way: ``tidings dev`` (every
module in one process) or one ``tidings serve <module>`` per module, each listener moved to a free port through the
``TIDINGS_MODULES__<MODULE>__…__PORT`` overrides, never the fixed ports a running system may hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer

from tidings import conf
from tidings.conf import JobGroup

MODULES = ("bff", "account", "chat", "job", "task", "admin")
GRPC_MODULES = ("bff", "account", "chat")
# The modules on the message path: the system is ready when each of them answers /readyz.
MESSAGE_PATH = ("account", "chat", "job", "bff")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


class Shape(StrEnum):
    """How a bench runs the system it starts: ``auto`` picks ``serve`` for a config on Kafka, else ``dev``."""

    auto = "auto"
    dev = "dev"
    serve = "serve"


# The options every bench that starts a system takes, spelled once.
UrlOption = Annotated[str | None, typer.Option(help="Target this bff instead of starting a system.")]
ConfigOption = Annotated[Path, typer.Option("--config", help="Config of the system it starts.")]
ShapeOption = Annotated[Shape, typer.Option(help="dev: one process; serve: one per module; auto: by the bus.")]
OutputOption = Annotated[Path, typer.Option(help="Markdown file the results are appended to.")]


def modules(shape: Shape, config: Path) -> list[str] | None:
    """What ``start`` runs for ``shape``: None for ``tidings dev``, else the message path, one process each."""
    if shape is Shape.auto:
        shape = Shape.serve if conf.load(config).bus.kind == "kafka" else Shape.dev
    return list(MESSAGE_PATH) if shape is Shape.serve else None


def describe(config: Path, started: list[str] | None) -> str:
    """The system a bench started, for its report."""
    if started is None:
        return f"`tidings dev` (every module in one process), started by the bench; config `{config.name}`"
    return f"`tidings serve <module>` per module ({', '.join(started)}), started by the bench; config `{config.name}`"


# Ports this process handed out: each goes to one listener, even before that listener binds it.
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, below the range the kernel takes the ports of outgoing connections from: a
    port of that range (the kernel's own pick included) can be taken by some process's connection between this
    check and the bind of the process it is given, which then cannot start. Never the same port twice in one
    process: a system's ports are all picked before any of its processes binds one."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    picker = random.Random()  # noqa: S311 - picks a port, not a secret
    for _ in range(1000):
        port = picker.randrange(max(1024, low // 2), low)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port below {low}")


@dataclass(frozen=True)
class Ports:
    """The HTTP port of every module, the gRPC port of those that serve gRPC, and the bff's internal gRPC port
    (what its routes hold: the push job's Deliver) and metrics port."""

    http: dict[str, int]
    grpc: dict[str, int]
    bff_internal_grpc: int
    bff_metrics: int

    @classmethod
    def free(cls) -> Ports:
        return cls({m: free_port() for m in MODULES}, {m: free_port() for m in GRPC_MODULES}, free_port(), free_port())

    def metrics(self, module: str) -> int:
        """The port of ``module``'s ``/metrics``: its HTTP port, but the bff's own metrics port (its HTTP is public)."""
        return self.bff_metrics if module == "bff" else self.http[module]

    def env(self) -> dict[str, str]:
        """The overrides every process gets: its own listeners move, and it dials the others where they moved."""
        env = {f"TIDINGS_MODULES__{m.upper()}__HTTP__PORT": str(port) for m, port in self.http.items()}
        env |= {f"TIDINGS_MODULES__{m.upper()}__GRPC__PORT": str(port) for m, port in self.grpc.items()}
        env["TIDINGS_MODULES__BFF__INTERNAL_GRPC__PORT"] = str(self.bff_internal_grpc)
        env["TIDINGS_MODULES__BFF__METRICS__PORT"] = str(self.bff_metrics)
        return env


@dataclass(frozen=True)
class Process:
    """One process of a system: its name, its ``tidings`` arguments, the HTTP ports whose ``/readyz`` say it is
    ready, its ``/metrics`` URL, and environment of its own on top of the system's."""

    name: str
    args: tuple[str, ...]
    ready: tuple[int, ...]
    metrics: str
    env: dict[str, str] = field(default_factory=dict)


class System:
    """A started system: the bff's URL, and the pid and ``/metrics`` URL of every process, by name (``dev``, the
    module, or ``job <group>`` for a job process of its own; `` 2`` and on after the name of a further instance).
    A process can be killed, paused, stopped and started again, as a crash, a stall or a deploy would (``tidings
    chaos``)."""

    def __init__(
        self, ports: Sequence[Ports], plan: Sequence[Process], config: Path, env: dict[str, str], workdir: Path
    ) -> None:
        # Each bff instance's URL, and where native clients open its gRPC stream (its public gRPC listener).
        self.urls = [f"http://127.0.0.1:{instance.http['bff']}" for instance in ports]
        self.grpcs = [f"127.0.0.1:{instance.grpc['bff']}" for instance in ports]
        self.url, self.grpc = self.urls[0], self.grpcs[0]
        self.plan = {process.name: process for process in plan}
        self.metrics = {process.name: process.metrics for process in plan}
        self._config = config
        self._env = env
        self._workdir = workdir
        # subprocess rather than asyncio's: CPython starts a child with vfork and exec, where uvloop's fork runs the
        # fork handlers of the libraries loaded here in the child, and gRPC's can crash it before exec when the
        # parent has gRPC streams open (``tidings chaos``).
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self._running.items()}

    async def launch(self, name: str) -> None:
        """Start ``name`` and wait until it is ready (its log goes on where it was)."""
        process = self.plan[name]
        log = self._workdir / f"{name.replace(' ', '-')}.log"
        with log.open("ab") as out:
            self._running[name] = subprocess.Popen(  # noqa: ASYNC220, S603 - returns once started; our own command
                _argv(list(process.args), self._config),
                cwd=self._workdir,
                env={**self._env, **process.env},
                stdout=out,
                stderr=out,
            )
        await _wait_ready(name, self._running[name], list(process.ready), log)

    async def kill(self, name: str) -> None:
        """SIGKILL ``name``, as a crash would, and reap it."""
        process = self._running.pop(name)
        process.kill()
        await asyncio.to_thread(process.wait)

    async def terminate(self, name: str) -> None:
        """SIGTERM ``name``, as a deploy does, and wait until it drained and exited."""
        await _stop(self._running.pop(name))

    def signal(self, name: str, number: signal.Signals) -> None:
        """Send ``number`` to ``name`` (SIGSTOP/SIGCONT: a long pause, as a stalled machine or runtime makes)."""
        self._running[name].send_signal(number)

    async def stop(self) -> None:
        """Stop every process, last started first."""
        for name in reversed(list(self._running)):
            await _stop(self._running.pop(name))


@contextlib.asynccontextmanager
async def start(
    config: Path,
    modules: Sequence[str] | None = None,
    *,
    log_level: str = "WARNING",
    jobs: Sequence[Sequence[JobGroup]] = (),
    instances: int = 1,
    env: Mapping[str, str] | None = None,
    keep_logs: Path | None = None,
) -> AsyncIterator[System]:
    """Start ``tidings dev`` (``modules`` None) or ``tidings serve <module>`` for each of ``modules`` in order, all
    with ``config`` on free ports in a scratch directory; yields once all are ready and stops them (last first) after.
    ``jobs`` splits the job module into one process per item, each running those consumer groups; ``instances``
    runs that many of each process (each instance on ports of its own; the others dial every instance of a
    module); ``env`` adds settings of the caller's own; ``keep_logs`` is a folder the processes' logs are copied
    into at the end.
    """
    every = [Ports.free() for _ in range(instances)]
    ports = every[0]
    # Its own topics, consumer groups and route table: a test fleet on the same broker and Redis never takes the
    # bench's records or sweeps its routes.
    namespace = f"bench-{uuid.uuid4().hex[:10]}"
    full_env = {
        **os.environ,
        **ports.env(),
        # WARNING by default: no access line per request (INFO measures what they cost).
        "TIDINGS_LOG__LEVEL": log_level,
        "TIDINGS_BUS__NAMESPACE": f"{namespace}.",
        "TIDINGS_REALTIME__ROUTE_PREFIX": f"{namespace}.rt",
        # Every simulated client connects from this one machine's address: no per-address cap.
        "TIDINGS_MODULES__BFF__MAX_CONNECTIONS_PER_CLIENT": "0",
        # A few simulated users send what many real ones would: the per-user send limit stays on (its cost is
        # measured) but far above the load.
        "TIDINGS_LIMITS__SEND_PER_S": "1000000",
        "TIDINGS_LIMITS__SEND_BURST": "1000000",
        # Sign-up is setup, not the load: the bench's throwaway users get the cheapest password hashes allowed, so
        # thousands of them sign up in seconds rather than minutes.
        "TIDINGS_AUTH__PASSWORD_TIME_COST": "1",
        "TIDINGS_AUTH__PASSWORD_MEMORY_KIB": "8192",
        **(_dial_every(every) if instances > 1 else {}),
        **(env or {}),
    }
    plan = [process for k, instance in enumerate(every) for process in _plan(instance, modules, jobs, k)]
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as scratch:
        system = System(every, plan, config, full_env, Path(scratch))
        try:
            # One after another: the first applies the migrations, the others find them applied.
            for name in system.plan:
                await system.launch(name)
            yield system
        finally:
            await system.stop()
            if keep_logs is not None:
                _copy_logs(Path(scratch), keep_logs)


def _copy_logs(scratch: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    for log in scratch.glob("*.log"):
        shutil.copy(log, to / log.name)


def _dial_every(every: Sequence[Ports]) -> dict[str, str]:
    """Each service module is dialed at all of its instances, calls spread over them."""
    return {
        f"TIDINGS_MODULES__{m.upper()}__DIAL": "ipv4:" + ",".join(f"127.0.0.1:{p.grpc[m]}" for p in every)
        for m in ("account", "chat")
    }


def _plan(
    ports: Ports, modules: Sequence[str] | None, jobs: Sequence[Sequence[JobGroup]], instance: int = 0
) -> list[Process]:
    """The processes of one instance of the system; a further one (``instance`` 1 and on) has names ending in its
    number and listens on ports of its own, which it is told of in its own environment."""

    def metrics(module: str) -> str:
        return f"http://127.0.0.1:{ports.metrics(module)}/metrics"

    def own(module: str) -> dict[str, str]:
        if instance == 0:
            return {}
        prefix = f"TIDINGS_MODULES__{module.upper()}"
        env = {f"{prefix}__HTTP__PORT": str(ports.http[module])}
        if module in GRPC_MODULES:
            env[f"{prefix}__GRPC__PORT"] = str(ports.grpc[module])
        if module == "bff":
            env[f"{prefix}__INTERNAL_GRPC__PORT"] = str(ports.bff_internal_grpc)
            env[f"{prefix}__METRICS__PORT"] = str(ports.bff_metrics)
        return env

    suffix = f" {instance + 1}" if instance else ""
    if modules is None:
        return [Process("dev", ("dev",), tuple(ports.http[m] for m in MESSAGE_PATH), metrics("bff"))]
    plan = []
    for module in modules:
        if module != "job" or not jobs:
            ready = (ports.http[module],)
            plan.append(Process(module + suffix, ("serve", module), ready, metrics(module), own(module)))
            continue
        for groups in jobs:
            port = free_port()
            env = {"TIDINGS_MODULES__JOB__HTTP__PORT": str(port), "TIDINGS_MODULES__JOB__GROUPS": json.dumps(groups)}
            url = f"http://127.0.0.1:{port}/metrics"
            plan.append(Process(f"job {groups[0]}{suffix}", ("serve", "job"), (port,), url, env))
    return plan


def _argv(args: list[str], config: Path) -> list[str]:
    # Resolved: the process runs in the scratch directory, where a relative config path would not be found.
    return [sys.executable, "-m", "tidings", *args, "--config", str(config.resolve())]


def _tail(log: Path) -> str:
    return log.read_bytes()[-2000:].decode(errors="replace")


async def _wait_ready(name: str, process: subprocess.Popen[bytes], http_ports: list[int], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tidings {name} exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                answers = [await client.get(f"http://127.0.0.1:{port}/readyz") for port in http_ports]
                if all(answer.status_code == 200 for answer in answers):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"tidings {name} was not ready within {READY_TIMEOUT_S:g} s")
            await asyncio.sleep(0.2)


async def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait for the drain; SIGKILL only if it outlasts ``STOP_TIMEOUT_S``."""
    if process.poll() is None:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def rss_kib(pid: int) -> int:
    """The resident set of ``pid`` in KiB, from ``/proc`` (no psutil)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# The middleware servers a benchmark finds running on this machine, by what their command lines hold: on a small
# machine they share the cores with Tidings, so their CPU per message counts as much as Tidings' own.
MIDDLEWARE = {
    "mariadb": ("mariadbd",),
    "redis": ("redis-server",),
    "kafka": ("java", "kafka.Kafka"),
    "opensearch": ("java", "org.opensearch.bootstrap.OpenSearch"),
}


def middleware_pids() -> dict[str, int]:
    """The pid of each middleware server of ``MIDDLEWARE`` running here (those not found are left out)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            program = (entry / "comm").read_text().strip()
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        for name, (binary, *marks) in MIDDLEWARE.items():
            if name not in found and program == binary and all(mark in words for mark in marks):
                found[name] = int(entry.name)
    return found


# This process in a CPU table: the load client shares the machine's cores with the system it measures.
BENCH_CLIENT = "bench client"


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """``cpu_seconds`` of each named process."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has used so far (user + system, all its threads), from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: the fields that follow start after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
