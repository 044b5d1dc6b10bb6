"""Presence from the route table that live connections keep alive: a user is online while one of their devices
is. One source of truth: the same table the push job reads (``tidings.realtime.routes``), looked up in one batch."""

from __future__ import annotations

from collections.abc import Iterable

from tidings.bff.biz.model import Presence
from tidings.realtime.model import RouteTable


class RoutePresenceRepo:
    def __init__(self, routes: RouteTable) -> None:
        self._routes = routes

    async def statuses(self, user_ids: Iterable[int]) -> dict[int, Presence]:
        ids = list(user_ids)
        online = await self._routes.online(ids) if ids else set()
        return {user_id: Presence.ONLINE if user_id in online else Presence.OFFLINE for user_id in ids}
