"""Process lifecycle (Kratos ``App``): start every server together, wait for a signal, drain, then stop.

A server is anything with ``start`` (bind and return once serving) and ``stop`` (finish in-flight work and
return). If one fails to start, those already started are stopped and the error is raised. On SIGTERM or
SIGINT every server is stopped concurrently under ``stop_timeout_s``; what has not finished by then is
cancelled, so a stuck drain cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tidings.pkg import log

Cleanup = Callable[[], Awaitable[None]]


class Server(Protocol):
    """Something the process serves: an HTTP or gRPC server, a consumer loop, a scheduler."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Module:
    """What a module's composition root (its ``wire.py``) hands to the process: servers and their URLs."""

    name: str
    servers: list[Server]
    urls: dict[str, str] = field(default_factory=dict)


class App:
    def __init__(
        self,
        name: str,
        servers: Sequence[Server],
        *,
        resources: Sequence[Server] = (),
        cleanups: Sequence[Cleanup] = (),
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._servers = list(servers)
        self._resources = list(resources)
        self._cleanups = list(cleanups)
        self._stop_timeout_s = stop_timeout_s
        self._stopping = asyncio.Event()
        self._log = log.get("app")

    def stop(self) -> None:
        """Ask the app to drain and stop, as SIGTERM does."""
        self._stopping.set()

    async def run(self, *, ready: Callable[[], None] | None = None, handle_signals: bool = True) -> None:
        """Serve until ``stop()`` or a signal; ``ready`` is called once every server is up."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        started: list[Server] = []

        async def start(server: Server) -> None:
            await server.start()
            started.append(server)

        try:
            # Resources (an id lease, a consumer's partitions) come up before any server takes a call.
            for phase in (self._resources, self._servers):
                try:
                    async with asyncio.TaskGroup() as group:
                        for server in phase:
                            group.create_task(start(server), name=f"start {server.name}")
                except BaseExceptionGroup as failed:
                    # One clear error for the caller, not a group: the first server that could not start.
                    raise failed.exceptions[0] from None
            self._log.info("app started", servers=[server.name for server in started])
            if ready is not None:
                ready()
            await self._stopping.wait()
        finally:
            await self._stop(started)
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._log.info("stop requested", signal=sig.name)
        self._stopping.set()

    async def _stop_one(self, server: Server) -> None:
        try:
            await server.stop()
        except Exception:
            # One server failing to stop cleanly must not keep the others from stopping.
            self._log.exception("server did not stop cleanly", server=server.name)

    async def _stop(self, started: list[Server]) -> None:
        try:
            async with asyncio.timeout(self._stop_timeout_s):
                # Servers drain first; the resources their in-flight calls use go last.
                for phase in (self._servers, self._resources):
                    async with asyncio.TaskGroup() as group:
                        for server in phase:
                            if server in started:
                                group.create_task(self._stop_one(server), name=f"stop {server.name}")
        except TimeoutError:
            self._log.error("stop timed out; in-flight work was cancelled", timeout_s=self._stop_timeout_s)
        for cleanup in reversed(self._cleanups):
            try:
                await cleanup()
            except Exception:
                self._log.exception("cleanup failed")
        self._log.info("app stopped")


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (``uvicorn[standard]`` brings it): a faster event loop for every process."""
    try:
        import uvloop  # noqa: PLC0415 - optional: asyncio's own loop serves where uvloop is not installed
    except ImportError:
        return None
    return uvloop.new_event_loop
