"""``Job``: what the scheduler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """A periodic piece of work; ``run`` returns how many items it handled (rows pruned, keys repaired)."""

    name: str
    every_s: float
    run: Callable[[], Awaitable[int]]
    timeout_s: float = 60.0
