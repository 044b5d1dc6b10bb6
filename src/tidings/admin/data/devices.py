"""``RouteDevices``: a user's live connections, from the route table the bff writes."""

from __future__ import annotations

from tidings.admin.biz.model import Device
from tidings.realtime.model import RouteTable


class RouteDevices:
    def __init__(self, routes: RouteTable) -> None:
        self._routes = routes

    async def of(self, user_id: int) -> list[Device]:
        sessions = (await self._routes.routes_for([user_id])).get(user_id, {})
        return [Device(session_id, instance) for session_id, instance in sorted(sessions.items())]
