"""``BusUserEvents``: account's events on the event bus (Kafka or the embedded log), in the shared envelope."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from tidings.api.account.v1 import events_pb2
from tidings.pkg import log
from tidings.pkg.bus import BusError, Publisher, events
from tidings.pkg.pbtime import timestamp
from tidings.service.account import topics as account_topics
from tidings.service.account.biz.ports import RevokeCause
from tidings.service.account.store.records import user_to_pb
from tidings.service.account.user import User

_CAUSES = {
    RevokeCause.LOGOUT_ALL: events_pb2.REVOKE_CAUSE_LOGOUT_ALL,
    RevokeCause.BANNED: events_pb2.REVOKE_CAUSE_BANNED,
    RevokeCause.PASSWORD_RESET: events_pb2.REVOKE_CAUSE_PASSWORD_RESET,
}


class BusUserEvents:
    """Each event is published after its change committed, so a bus that fails does not fail the request: the
    event is logged as lost (what that costs is said per event)."""

    def __init__(self, bus: Publisher, topics: events.Topics) -> None:
        self._bus = bus
        self._topics = topics
        self._log = log.get("account.events")

    async def user_updated(self, user: User, at_ms: int) -> None:
        """Publish the profile as it is now. Lost, the search index keeps the old profile until the next update of
        that user or a rebuild."""
        payload = events_pb2.UserUpdated(user=user_to_pb(user), updated_at=timestamp(at_ms))
        await self._publish(account_topics.USER_UPDATED, user.id, payload, "user update not published")

    async def tokens_revoked(self, user_id: int, cause: RevokeCause, revoked_before_ms: int) -> None:
        """Publish the revocation. Lost, the user's live connections still close at their next token check (the
        bff re-verifies every ``realtime.reverify_interval_s``, and on every frame that does something)."""
        payload = events_pb2.TokensRevoked(
            user_id=user_id, cause=_CAUSES[cause], revoked_before=timestamp(revoked_before_ms)
        )
        await self._publish(account_topics.TOKENS_REVOKED, user_id, payload, "token revocation not published")

    async def _publish(self, topic: events.EventTopic[Any], user_id: int, payload: Message, lost: str) -> None:
        event = events.encode(self._topics, topic, events.id_key(user_id), payload)
        try:
            await self._bus.publish_many([event])
        except BusError as exc:
            self._log.error(lost, user_id=user_id, error=repr(exc))
