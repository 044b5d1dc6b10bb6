"""The current request's deadline, so that outgoing calls and other I/O run under the time it has left.

The server middleware sets it for each call (from the caller's gRPC deadline, or the module's request timeout);
the gRPC client middleware gives each outgoing call ``timeout = remaining()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("tidings_deadline", default=None)


@contextmanager
def scope(timeout_s: float | None) -> Iterator[None]:
    """Run the block under a deadline ``timeout_s`` from now, never later than an enclosing one."""
    if timeout_s is None:
        yield
        return
    deadline = time.monotonic() + timeout_s
    enclosing = _deadline.get()
    token = _deadline.set(deadline if enclosing is None else min(deadline, enclosing))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (zero or less once it passed), or ``None`` outside any."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
