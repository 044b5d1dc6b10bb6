"""``Breaker``: after a Redis failure, callers skip Redis for a while instead of each waiting for a timeout.

One breaker per Redis client and process: the caches and the seq allocator of a module share it, so the first
failure any of them sees sends them all to the database at once. After ``retry_after_s`` the next caller tries
Redis again (the breaker is half open); one success is not needed to close it, only the absence of failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.exceptions import RedisError

from tidings.pkg.rediscluster import CLUSTER_DOWN

# What "Redis is unreachable or too slow" looks like from redis-py (a single server or a cluster) and from our own
# timeouts.
UNREACHABLE: tuple[type[Exception], ...] = (RedisError, *CLUSTER_DOWN, ConnectionError, TimeoutError, OSError)


class Breaker:
    def __init__(self, retry_after_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._open_until = float("-inf")

    @property
    def open(self) -> bool:
        """Whether Redis is to be skipped now."""
        return self._clock() < self._open_until

    @property
    def retry_after_s(self) -> float:
        return self._retry_after_s

    def trip(self) -> None:
        """A call failed: skip Redis for ``retry_after_s`` from now."""
        self._open_until = self._clock() + self._retry_after_s
