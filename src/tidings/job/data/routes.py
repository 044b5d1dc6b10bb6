"""The route table (``tidings.realtime.model``) as push reads and prunes it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tidings.job.biz.errors import Unavailable
from tidings.job.data.errors import REDIS_DOWN
from tidings.pkg.errors import translated
from tidings.realtime.model import Route, RouteTable


class RouteTableLookup:
    def __init__(self, table: RouteTable) -> None:
        self._table = table

    async def routes_for(self, user_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        with translated(REDIS_DOWN, Unavailable, "route table"):
            return await self._table.routes_for(user_ids)

    async def remove(self, routes: Sequence[Route]) -> list[int]:
        with translated(REDIS_DOWN, Unavailable, "route table"):
            return await self._table.remove(routes)
