"""The driver failures that mean "down, restarting or too slow", not "this record is wrong"."""

from __future__ import annotations

from redis.exceptions import RedisError

from tidings.pkg import db

DATABASE_DOWN = db.UNREACHABLE

REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError)
