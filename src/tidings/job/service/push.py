"""Consumer group ``push`` on chat's message and read events, and account's token revocations: each batch's events
become gateway events for the devices of the users concerned (``biz.push``). A revocation becomes ``session_ended``
for each of the user's live sessions, which then close (``USER_BANNED`` for a ban, ``TOKEN_REVOKED`` otherwise).

A revocation read long after it happened (a replay, a consumer group that started over) is skipped: the sessions
open by then may hold tokens issued after it, and any that should end do at the bff's next token check."""

from __future__ import annotations

from collections.abc import Callable

from tidings.api.account.v1 import errors as account_errors
from tidings.api.account.v1 import events_pb2 as account_events
from tidings.api.chat.v1 import events_pb2 as chat_events
from tidings.api.gateway.v1 import gateway_pb2
from tidings.job.biz.errors import InvalidEvent
from tidings.job.biz.push import Push, Pusher
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import UnknownEventVersion
from tidings.pkg.clock import Clock, SystemClock
from tidings.pkg.pbtime import millis
from tidings.service.account import topics as account_topics
from tidings.service.chat import topics as chat_topics

GROUP = "push"
TOPICS = (
    chat_topics.MESSAGE_SENT,
    chat_topics.MESSAGE_RECALLED,
    chat_topics.CONVERSATION_READ,
    account_topics.TOKENS_REVOKED,
)
# What a user whose sessions an operator or they themselves ended reads, by cause.
_ENDINGS = {
    account_events.REVOKE_CAUSE_BANNED: (account_errors.USER_BANNED, "Your account was suspended by an operator."),
    account_events.REVOKE_CAUSE_PASSWORD_RESET: (
        account_errors.TOKEN_REVOKED,
        "Your password was reset by an operator. Sign in with the new one.",
    ),
}
_SIGNED_OUT = (account_errors.TOKEN_REVOKED, "You were signed out everywhere. Sign in again.")
# How old a revocation may be and still end sessions (the bff re-checks tokens every minute by default).
REVOCATION_FRESH_S = 60.0

GatewayPush = Push[gateway_pb2.Event]


class PushHandler:
    def __init__(
        self,
        pusher: Pusher[gateway_pb2.Event],
        *,
        topics: events.Topics | None = None,
        clock: Clock | None = None,
        revocation_fresh_s: float = REVOCATION_FRESH_S,
    ) -> None:
        self._pusher = pusher
        self._clock = clock or SystemClock()
        self._revocation_fresh_ms = int(revocation_fresh_s * 1000)
        topics = topics or events.Topics()
        self._decoders: dict[str, Callable[[Record], GatewayPush | None]] = {
            topics.name(chat_topics.MESSAGE_SENT): _message_new,
            topics.name(chat_topics.MESSAGE_RECALLED): _message_recalled,
            topics.name(chat_topics.CONVERSATION_READ): _conversation_read,
            topics.name(account_topics.TOKENS_REVOKED): self._tokens_revoked,
        }

    @property
    def topic_names(self) -> list[str]:
        return list(self._decoders)

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all (a bad record fails the batch), then push them."""
        pushes = [push for push in map(self._decode, records) if push is not None]
        if pushes:
            await self._pusher.push(pushes)

    def _tokens_revoked(self, record: Record) -> GatewayPush | None:
        revoked: account_events.TokensRevoked = events.decode(account_topics.TOKENS_REVOKED, record)
        if millis(revoked.revoked_before) + self._revocation_fresh_ms < self._clock.now_ms():
            return None
        reason, message = _ENDINGS.get(revoked.cause, _SIGNED_OUT)
        event = gateway_pb2.Event(session_ended=gateway_pb2.SessionEnded(reason=reason.name, message=message))
        return Push.to_user(revoked.user_id, event)

    def _decode(self, record: Record) -> GatewayPush | None:
        decoder = self._decoders.get(record.topic)
        if decoder is None:
            raise UnknownEventVersion(record, f"push does not consume topic {record.topic!r}")
        push = decoder(record)
        if push is None:
            return None
        if push.conversation_id <= 0 and push.user_id <= 0:
            raise InvalidEvent(f"{record.topic} offset {record.offset}: no conversation or user id")
        return push


def _message_new(record: Record) -> GatewayPush:
    message = events.decode(chat_topics.MESSAGE_SENT, record).message
    # The sender's other devices show it too (and the sending one drops it by message id).
    event = gateway_pb2.Event(message_new=gateway_pb2.MessageNew(message=message))
    return Push(message.conversation_id, event, also=message.sender_id)


def _message_recalled(record: Record) -> GatewayPush:
    recalled: chat_events.MessageRecalled = events.decode(chat_topics.MESSAGE_RECALLED, record)
    if recalled.moderation_reason:  # an operator removed it: the members see why
        removed = gateway_pb2.MessageRemoved(
            conversation_id=recalled.conversation_id,
            message_id=recalled.message_id,
            seq=recalled.seq,
            reason=recalled.moderation_reason,
        )
        return Push(recalled.conversation_id, gateway_pb2.Event(message_removed=removed))
    event = gateway_pb2.MessageRecalled(
        conversation_id=recalled.conversation_id, message_id=recalled.message_id, seq=recalled.seq
    )
    return Push(recalled.conversation_id, gateway_pb2.Event(message_recalled=event))


def _conversation_read(record: Record) -> GatewayPush:
    read: chat_events.ConversationRead = events.decode(chat_topics.CONVERSATION_READ, record)
    event = gateway_pb2.ConversationRead(conversation_id=read.conversation_id, user_id=read.user_id, seq=read.seq)
    return Push(read.conversation_id, gateway_pb2.Event(conversation_read=event), reader=read.user_id)
