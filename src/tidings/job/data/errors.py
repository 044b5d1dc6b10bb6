"""The Redis failures that mean "down, restarting or too slow", not "this record is wrong" (the database's are
``tidings.pkg.db.UNREACHABLE``)."""

from __future__ import annotations

from redis.exceptions import RedisError

REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError)
