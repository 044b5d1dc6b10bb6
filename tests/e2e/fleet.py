"""Runs Tidings modules as real processes for end-to-end tests and talks to them only through public ports.

``Fleet`` starts ``tidings serve <module>`` (or ``tidings dev``) with a config file and environment overrides,
waits until each module answers ``/readyz``, and can kill (SIGKILL) or stop (SIGTERM) and restart one, as a
crash or a deploy would. ``dev_on_free_ports`` is ``tidings dev`` (what ``make run`` starts) for synchronous
tests (the browser's, the API fuzzer's), on free ports so that it never meets another test's fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tidings.bench.system import free_port

ROOT = Path(__file__).resolve().parents[2]
HTTP_PORTS = {"bff": 8080, "account": 8081, "chat": 8082, "job": 8083, "task": 8084, "admin": 8085}


def port_env(module: str, http: int, grpc: int | None = None, *, internal: int | None = None) -> dict[str, str]:
    """Environment overrides that move ``module``'s listeners (and so where the others dial it). The bff's
    internal gRPC listener (``internal``, what its routes hold) and its metrics listener move too, to free ports
    unless given."""
    prefix = f"TIDINGS_MODULES__{module.upper()}"
    env = {f"{prefix}__HTTP__PORT": str(http)}
    if grpc is not None:
        env[f"{prefix}__GRPC__PORT"] = str(grpc)
    if module == "bff":
        env[f"{prefix}__INTERNAL_GRPC__PORT"] = str(internal or free_port())
    if module in ("bff", "admin"):
        env[f"{prefix}__METRICS__PORT"] = str(free_port())
    return env


DEV_MODULES = ("bff", "account", "chat", "job", "task", "admin")
_GRPC_MODULES = ("bff", "account", "chat")


@dataclass(frozen=True)
class Dev:
    """A running ``tidings dev``: its folder (where its SQLite files are), the environment it runs with (its
    ports), and each module's HTTP port."""

    workdir: Path
    config: Path
    env: dict[str, str]
    ports: dict[str, int]

    def url(self, module: str) -> str:
        return f"http://127.0.0.1:{self.ports[module]}"


@contextlib.contextmanager
def dev_on_free_ports(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[Dev]:
    """``tidings dev`` on free ports, run from ``workdir`` (empty, so its SQLite files and event log start empty),
    with ``env`` on top of this process's environment; stopped on exit."""
    config = ROOT / "configs" / "dev.yaml"
    full_env = {**os.environ, "TIDINGS_LOG__LEVEL": "WARNING", **(env or {})}
    ports = {}
    for module in DEV_MODULES:
        ports[module] = free_port()
        full_env.update(port_env(module, ports[module], free_port() if module in _GRPC_MODULES else None))
    log_path = workdir / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tidings", "dev", "--config", str(config)],
            cwd=workdir,
            env=full_env,
            stdout=log,
            stderr=log,
        )
    try:
        for module in ("account", "chat", "job", "bff", "admin"):
            _wait_ready(process, ports[module], log_path)
        yield Dev(workdir, config, full_env, ports)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"tidings dev exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"tidings dev not ready on {port} after {timeout_s}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)


@dataclass
class Process:
    name: str
    args: list[str]
    ready_port: int
    log: Path
    handle: asyncio.subprocess.Process | None = None
    restarts: int = 0
    # This process's own overrides on top of the fleet's (a second instance of a module on other ports).
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Fleet:
    config: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    # Its own topics and consumer groups on the shared broker: another fleet's job never takes this one's records.
    namespace: str = field(default_factory=lambda: f"fleet-{uuid.uuid4().hex[:10]}.")

    async def start(
        self,
        name: str,
        *,
        ready_port: int | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start module ``name`` (``dev`` for the whole system in one process) and wait until it is ready."""
        command = args or (["dev"] if name == "dev" else ["serve", name])
        port = ready_port or HTTP_PORTS.get(name, 8080)
        process = self.processes.get(name) or Process(name, command, port, self.workdir / f"{name}.log", env=env or {})
        self.processes[name] = process
        await self._spawn(process)

    async def _spawn(self, process: Process) -> None:
        log = process.log.open("ab")
        process.handle = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tidings",
            *process.args,
            "--config",
            str(self.config),
            cwd=self.workdir,
            stdout=log,
            stderr=log,
            env={
                **os.environ,
                "TIDINGS_LOG__LEVEL": "INFO",
                "TIDINGS_BUS__NAMESPACE": self.namespace,
                # Its own search indices (or tables) too.
                "TIDINGS_SEARCH__NAMESPACE": self.namespace,
                # Its own route table too: another fleet's bff never sweeps this one's expired routes.
                "TIDINGS_REALTIME__ROUTE_PREFIX": f"{self.namespace}rt",
                **self.env,
                **process.env,
            },
        )
        log.close()
        await self.wait_ready(process.name)

    async def wait_ready(self, name: str, timeout_s: float = 60) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if process.handle is not None and process.handle.returncode is not None:
                    raise AssertionError(f"{name} exited with {process.handle.returncode}:\n{self.tail(name)}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{process.ready_port}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} not ready after {timeout_s}s:\n{self.tail(name)}")
                await asyncio.sleep(0.2)

    async def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to drain or commit, as in a crash."""
        await self._signal(name, signal.SIGKILL)

    async def stop(self, name: str) -> int:
        """SIGTERM: a graceful stop; returns the exit status."""
        return await self._signal(name, signal.SIGTERM)

    def pause(self, name: str) -> None:
        """SIGSTOP: the process freezes with its connections open, as in a long GC pause or a frozen VM."""
        self._send(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self._send(name, signal.SIGCONT)

    def _send(self, name: str, sig: signal.Signals) -> None:
        handle = self.processes[name].handle
        assert handle is not None
        handle.send_signal(sig)

    async def _signal(self, name: str, sig: signal.Signals) -> int:
        handle = self.processes[name].handle
        assert handle is not None
        if handle.returncode is None:
            handle.send_signal(sig)
        return await asyncio.wait_for(handle.wait(), timeout=30)

    async def restart(self, name: str) -> None:
        process = self.processes[name]
        process.restarts += 1
        await self._spawn(process)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.processes[name].log
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def close(self) -> None:
        for name, process in self.processes.items():
            if process.handle is not None and process.handle.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.handle.send_signal(signal.SIGCONT)  # a paused process could not hear the SIGTERM
                with contextlib.suppress(ProcessLookupError, TimeoutError):
                    await self._signal(name, signal.SIGTERM)
            if process.handle is not None and process.handle.returncode is None:
                process.handle.kill()
                await process.handle.wait()
