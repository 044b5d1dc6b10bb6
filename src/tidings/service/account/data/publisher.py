"""``BusUserEvents``: account's events on the event bus (Kafka or the embedded log), in the shared envelope."""

from __future__ import annotations

from tidings.api.account.v1 import account_pb2, events_pb2
from tidings.pkg import log
from tidings.pkg.bus import BusError, Publisher, events
from tidings.pkg.pbtime import timestamp
from tidings.service.account import topics as account_topics
from tidings.service.account.user import User


class BusUserEvents:
    def __init__(self, bus: Publisher, topics: events.Topics) -> None:
        self._bus = bus
        self._topics = topics
        self._log = log.get("account.events")

    async def user_updated(self, user: User, at_ms: int) -> None:
        """Publish the profile as it is now. The change is committed already, so a bus that fails here does not
        fail the request: the event is logged as lost, and the search index keeps the old profile until the next
        update of that user or a rebuild."""
        profile = account_pb2.User(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            bio=user.bio,
            avatar_url=user.avatar_url,
            created_at=timestamp(user.created_at_ms),
        )
        payload = events_pb2.UserUpdated(user=profile, updated_at=timestamp(at_ms))
        event = events.encode(self._topics, account_topics.USER_UPDATED, events.id_key(user.id), payload)
        try:
            await self._bus.publish_many([event])
        except BusError as exc:
            self._log.error("user update not published", user_id=user.id, error=repr(exc))
