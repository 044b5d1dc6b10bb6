"""The route table as its users see it: a route, the routes of many users, and the port every adapter implements.

Pure Python (no driver), so the bff's use cases and the push job may both depend on it; the adapters (Redis,
in-process) are in ``tidings.realtime.routes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol


class Route(NamedTuple):
    """One live connection: the user's session (a device) is served by the bff at ``instance``."""

    user_id: int
    session_id: str
    instance: str


# user id -> session id -> instance address, as the route table answers lookups.
Routes = dict[int, dict[str, str]]


class RouteTable(Protocol):
    """user -> session -> bff instance, with a TTL per route: written by the bff, read by the push job."""

    async def touch(self, routes: Sequence[Route]) -> list[int]:
        """Write or refresh the routes; the users who had no live route before (they came online)."""

    async def remove(self, routes: Sequence[Route]) -> list[int]:
        """Delete the routes; the users left with no live route (they went offline)."""

    async def routes_for(self, user_ids: Iterable[int]) -> Routes:
        """Live routes of many users in one round trip; users with none are left out."""

    async def online(self, user_ids: Iterable[int]) -> set[int]:
        """The users among ``user_ids`` with at least one live route."""

    async def sweep(self, limit: int = ...) -> list[int]:
        """Drop routes that expired without a disconnect (a crashed bff); the users now offline, each reported once."""

    async def beacon(self, instance: str) -> bool:
        """Mark ``instance`` as writing to this table (for two route TTLs); answers whether its mark was still
        there. False after a first mark means the table lost what the instance wrote (flushed, or back empty after
        a restart): its routes were gone, and deliveries meanwhile went nowhere."""
