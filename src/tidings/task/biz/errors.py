"""What a scheduled run raises besides a bug."""

from __future__ import annotations


class Unavailable(Exception):
    """A store the run needs did not answer (down, restarting, timed out): the run is tried again at its next
    turn."""
