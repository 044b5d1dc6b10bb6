"""The Redis failures that mean "down, restarting or too slow", not "this record is wrong" (the database's are
``tidings.pkg.db.UNREACHABLE``)."""

from __future__ import annotations

from redis.exceptions import RedisError

from tidings.pkg.rediscluster import CLUSTER_DOWN

REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, *CLUSTER_DOWN, OSError)
