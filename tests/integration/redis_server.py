"""A Redis server of one test alone, on a free port, that the test may stop, freeze and start again.

The stack's Redis is shared by everyone's tests, so outages are played on a private server of the same binary.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import redis.asyncio as redis

from tidings.bench.system import free_port


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start (again, on the same port, empty: nothing is saved) and wait until it answers."""
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._workdir),
            "--save", "", "--appendonly", "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)
        try:
            async with asyncio.timeout(20):
                while True:
                    try:
                        await probe.ping()
                        return
                    except (redis.ConnectionError, redis.TimeoutError):
                        await asyncio.sleep(0.05)
        finally:
            await probe.aclose()

    async def stop(self) -> None:
        """SIGTERM and wait: connections are refused until ``start``."""
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung server or a partition)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the same server, with its data and run id, answers again."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def client(self, timeout_s: float = 5.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self.thaw()
            await self.stop()
