"""Presence from the route table that connections keep alive: a user is online while one of their devices is.

The route table is written by the bff's WebSocket and gRPC stream connections (real-time delivery); a user with
no live route is offline. Both adapters read it in one batch (Redis: one MGET).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as redis

from tidings.bff.biz.model import Presence


def presence_key(user_id: int) -> str:
    return f"presence:{user_id}"


class RedisPresenceRepo:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    async def statuses(self, user_ids: Iterable[int]) -> dict[int, Presence]:
        ids = list(user_ids)
        if not ids:
            return {}
        values = await self._redis.mget([presence_key(user_id) for user_id in ids])
        return {
            user_id: Presence.ONLINE if value is not None else Presence.OFFLINE
            for user_id, value in zip(ids, values, strict=True)
        }


class LocalPresenceRepo:
    """The in-process route table of ``tidings dev``: the set of users with a live connection."""

    def __init__(self) -> None:
        self.online: set[int] = set()

    async def statuses(self, user_ids: Iterable[int]) -> dict[int, Presence]:
        return {user_id: Presence.ONLINE if user_id in self.online else Presence.OFFLINE for user_id in user_ids}
