"""A task's run as the schedule records it, the lease that makes one process its runner, and the log of last runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Run:
    """A task's run as recorded: ``finished_at_ms`` is ``None`` while it runs (or if its runner died or lost its
    lease during it)."""

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


class Checkpoint(Protocol):
    """Where a task goes on from (a ``Lease``'s part its use case needs)."""

    async def load_checkpoint(self) -> str: ...

    async def save_checkpoint(self, checkpoint: str) -> None: ...


class Lease(Protocol):
    """The right to run one task, held by one process of the fleet at a time for ``ttl`` and renewed while it runs.

    Each take-over hands out a new fencing token, and every write of the task's run (its record, and each batch of
    its work) checks it in the same transaction: a runner that was paused or cut off past its lease, and lost it to
    another, has its writes refused (``LeaseLost``) instead of running beside the new one.
    """

    @property
    def name(self) -> str: ...

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired (with a new token), or renew it if it is still ours."""
        ...

    async def renew(self) -> bool:
        """Extend the lease we hold; ``False`` once another process has taken it (or we never held it)."""
        ...

    async def release(self) -> None:
        """Give the lease up at once (if still ours), so the next process need not wait for it to expire."""
        ...

    async def record(self, run: Run) -> None:
        """Keep ``run`` as the task's last run, fenced: ``LeaseLost`` if the lease is no longer ours."""
        ...

    async def load_checkpoint(self) -> str:
        """Where the task goes on from ("" before its first checkpoint)."""
        ...

    async def save_checkpoint(self, checkpoint: str) -> None:
        """Keep the task's checkpoint (at most 256 characters), fenced like ``record``."""
        ...
