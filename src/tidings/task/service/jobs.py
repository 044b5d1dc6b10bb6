"""``Job``: what the scheduler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.task.biz.progress import Progress


@dataclass(frozen=True)
class Job:
    """A piece of work on a cron ``schedule`` (UTC); ``run`` returns how many items it handled (rows pruned, keys
    repaired), telling its ``Progress`` as it goes (the scheduler's runs pass ``NO_PROGRESS``)."""

    name: str
    schedule: str
    run: Callable[[Progress], Awaitable[int]]
    # How many items a run now would handle, changing nothing (``tidings task run --dry-run``).
    preview: Callable[[], Awaitable[int]] | None = None
    timeout_s: float = 60.0
