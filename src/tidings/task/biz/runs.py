"""A task's run as the schedule records it, and the port of the log that keeps each task's last one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Run:
    """A task's run as recorded: ``finished_at_ms`` is ``None`` while it runs (or if its process died)."""

    name: str
    started_at_ms: int
    finished_at_ms: int | None
    # running, ok, error, timeout
    outcome: str
    items: int = 0
    error: str = ""


class RunLog(Protocol):
    """Each task's last run, shared by every task process."""

    async def last_runs(self, names: Sequence[str]) -> dict[str, Run]: ...

    async def record(self, run: Run) -> None:
        """Keep ``run`` as its task's last run (replacing the one before)."""
