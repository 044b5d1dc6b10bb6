"""``Job``: what the scheduler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.task.biz.progress import Progress


@dataclass(frozen=True)
class Job:
    """A piece of work on a cron ``schedule`` (UTC), or only when an operator asks (``None``: on demand, never run by
    the scheduler itself); ``run`` returns how many items it handled (rows pruned, keys
    repaired), telling its ``Progress`` as it goes (the scheduler's runs pass ``NO_PROGRESS``)."""

    name: str
    schedule: str | None
    run: Callable[[Progress], Awaitable[int]]
    # How many items a run now would handle, changing nothing (``tidings task run --dry-run``).
    preview: Callable[[], Awaitable[int]] | None = None
    timeout_s: float = 60.0
