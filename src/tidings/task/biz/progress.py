"""How far a task's run has come, for an operator watching it (``tidings task run`` draws a progress bar); the
scheduler's runs are watched by nobody and take ``NO_PROGRESS``."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int | None) -> None:
        """The run's work begins: about ``total`` items (an estimate, which the items done may pass), or ``None``
        when the run cannot tell in advance."""
        ...

    def advance(self, n: int) -> None:
        """``n`` more items done."""
        ...


class NoProgress:
    """A run nobody watches."""

    def start(self, total: int | None) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


NO_PROGRESS = NoProgress()
