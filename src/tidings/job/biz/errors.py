"""What a job's handler raises besides a bug: the world is down (retried), or the record is bad (dead letter)."""

from __future__ import annotations


class Unavailable(Exception):
    """A store or service the job needs did not answer (down, restarting, timed out). The record is fine: the
    consumer retries it without end and never dead-letters it."""


class InvalidEvent(ValueError):
    """A record that lacks what handling it needs: a poison record (dead letter)."""


# What a consumer retries without end instead of dead-lettering: the adapters turn their drivers' failures into
# ``Unavailable``; a connection or timeout error raised on the way counts the same. The consumer pauses fetching
# meanwhile, and the records are handled once the world is back.
TRANSIENT: tuple[type[Exception], ...] = (Unavailable, ConnectionError, TimeoutError)
