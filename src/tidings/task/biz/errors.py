"""What a scheduled run raises besides a bug."""

from __future__ import annotations


class Unavailable(Exception):
    """A store the run needs did not answer (down, restarting, timed out): the run is tried again at its next
    turn."""


class LeaseLost(Exception):
    """The task's lease passed to another process (this one was paused, cut off or too slow to renew it): the write
    was refused and the run ends here; the new holder runs the task."""
