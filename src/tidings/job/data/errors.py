"""The driver failures that mean "down, restarting or too slow", not "this record is wrong"."""

from __future__ import annotations

import sqlalchemy.exc
from redis.exceptions import RedisError

from tidings.pkg.db import DatabaseUnavailable

DATABASE_DOWN: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    DatabaseUnavailable,
)

REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError)
