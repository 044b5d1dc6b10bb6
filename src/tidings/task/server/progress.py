"""How an operator sees a task's run progress (``tidings task run``): a bar (``rich.progress``) on a terminal, and on
anything else (a pipe, a log file, a test capturing the output) a plain line now and then, never escape codes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bar

from tidings.task.biz.progress import Progress


class TerminalProgress:
    """A progress bar of one run on ``console``, drawn while the context is open."""

    def __init__(self, name: str, console: Console) -> None:
        self._bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._bar.add_task(name, total=None, start=False)

    def __enter__(self) -> TerminalProgress:
        self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._bar.stop()

    def start(self, total: int | None) -> None:
        self._bar.update(self._task, total=total)
        self._bar.start_task(self._task)

    def advance(self, n: int) -> None:
        self._bar.advance(self._task, n)


class LineProgress:
    """A line on ``stream`` at most every ``every_s`` seconds while the run advances (none for a short run)."""

    def __init__(
        self, name: str, stream: TextIO, *, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._name = name
        self._stream = stream
        self._every_s = every_s
        self._clock = clock
        self._total: int | None = None
        self._done = 0
        self._last = clock()

    def start(self, total: int | None) -> None:
        self._total = total

    def advance(self, n: int) -> None:
        self._done += n
        now = self._clock()
        if now - self._last < self._every_s:
            return
        self._last = now
        if self._total:
            line = f"{self._name}: {self._done} of about {self._total} items ({100 * self._done // self._total}%)"
        else:
            line = f"{self._name}: {self._done} items"
        print(line, file=self._stream, flush=True)


@contextmanager
def shown(name: str, stream: TextIO | None = None) -> Iterator[Progress]:
    """The progress of an operator's run of ``name``, shown on ``stream`` (stderr: stdout carries the result)."""
    stream = stream or sys.stderr
    if stream.isatty():
        with TerminalProgress(name, Console(file=stream)) as bar:
            yield bar
    else:
        yield LineProgress(name, stream)
