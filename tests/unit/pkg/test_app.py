from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tidings.pkg.app import App


class Recorder:
    """A server that records what the app asked of it; ``stop`` can be made to hang."""

    def __init__(self, name: str, events: list[str], *, fail_start: bool = False, hang_on_stop: bool = False):
        self.name = name
        self._events = events
        self._fail_start = fail_start
        self._hang_on_stop = hang_on_stop

    async def start(self) -> None:
        await asyncio.sleep(0.01)
        if self._fail_start:
            raise OSError(f"{self.name}: cannot listen")
        self._events.append(f"start {self.name}")

    async def stop(self) -> None:
        if self._hang_on_stop:
            await asyncio.sleep(3600)
        self._events.append(f"stop {self.name}")


async def test_resources_start_before_servers_and_stop_after_them() -> None:
    events: list[str] = []
    app = App("t", [Recorder("http", events), Recorder("grpc", events)], resources=[Recorder("lease", events)])
    ready = asyncio.Event()
    runner = asyncio.create_task(app.run(ready=ready.set, handle_signals=False))
    await ready.wait()
    assert events[0] == "start lease"
    assert set(events[1:]) == {"start http", "start grpc"}
    app.stop()
    await runner
    assert set(events[3:5]) == {"stop http", "stop grpc"}
    assert events[5] == "stop lease"


async def test_sigterm_drains_and_stops_then_cleanups_run() -> None:
    events: list[str] = []

    async def cleanup() -> None:
        events.append("cleanup")

    app = App("t", [Recorder("http", events)], cleanups=[cleanup])
    ready = asyncio.Event()
    runner = asyncio.create_task(app.run(ready=ready.set))
    await ready.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(runner, timeout=5)
    assert events == ["start http", "stop http", "cleanup"]


async def test_a_stuck_stop_is_cut_off_by_the_timeout() -> None:
    events: list[str] = []
    app = App("t", [Recorder("stuck", events, hang_on_stop=True), Recorder("ok", events)], stop_timeout_s=0.2)
    ready = asyncio.Event()
    runner = asyncio.create_task(app.run(ready=ready.set, handle_signals=False))
    await ready.wait()
    app.stop()
    await asyncio.wait_for(runner, timeout=5)
    assert "stop ok" in events
    assert "stop stuck" not in events


async def test_a_server_that_cannot_start_stops_the_others_and_raises() -> None:
    events: list[str] = []
    app = App("t", [Recorder("ok", events), Recorder("bad", events, fail_start=True)])
    with pytest.raises(OSError, match="bad: cannot listen"):
        await app.run(handle_signals=False)
    assert events == ["start ok", "stop ok"]
