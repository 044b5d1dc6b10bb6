"""The bff's domain types to and from the protobuf contracts, shared by ``service`` (the gRPC stream, the
``Deliver`` servicer) and ``data`` (chat replies, ``Deliver`` calls to other instances): one mapping each way,
named ``<type>_from_pb`` / ``<type>_to_pb`` (the JSON side is ``service/schema.py`` and ``service/ws_codec.py``)."""

from __future__ import annotations

from tidings.api.chat.v1 import chat_pb2
from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.bff.biz.model import Conversation, Kind, Presence
from tidings.bff.biz.realtime.events import (
    ConversationRead,
    Event,
    MessageNew,
    MessageRecalled,
    MessageRemoved,
    PresenceChanged,
    SessionEnded,
    Typing,
)
from tidings.pkg.pbtime import millis
from tidings.service.chat.store.records import message_from_pb, message_to_pb

_STATUS_TO_PB = {Presence.ONLINE: pb.PRESENCE_STATUS_ONLINE, Presence.OFFLINE: pb.PRESENCE_STATUS_OFFLINE}
_STATUS_FROM_PB = {value: key for key, value in _STATUS_TO_PB.items()}
_KINDS = {chat_pb2.CONVERSATION_KIND_DIRECT: Kind.DIRECT, chat_pb2.CONVERSATION_KIND_GROUP: Kind.GROUP}


def conversation_from_pb(c: chat_pb2.Conversation) -> Conversation:
    return Conversation(
        id=c.id,
        kind=_KINDS[c.kind],
        title=c.title,
        member_ids=tuple(c.member_ids),
        max_seq=c.max_seq,
        read_seq=c.read_seq,
        unread_count=c.unread_count,
        last_message=message_from_pb(c.last_message) if c.HasField("last_message") else None,
        updated_at_ms=millis(c.updated_at),
    )


def event_to_pb(event: Event) -> pb.Event:  # noqa: PLR0911 (one return per kind of event)
    match event:
        case MessageNew(message):
            return pb.Event(message_new=pb.MessageNew(message=message_to_pb(message)))
        case MessageRecalled(conversation_id, message_id, seq):
            recalled = pb.MessageRecalled(conversation_id=conversation_id, message_id=message_id, seq=seq)
            return pb.Event(message_recalled=recalled)
        case MessageRemoved(conversation_id, message_id, seq, reason):
            removed = pb.MessageRemoved(conversation_id=conversation_id, message_id=message_id, seq=seq, reason=reason)
            return pb.Event(message_removed=removed)
        case ConversationRead(conversation_id, user_id, seq):
            read = pb.ConversationRead(conversation_id=conversation_id, user_id=user_id, seq=seq)
            return pb.Event(conversation_read=read)
        case Typing(conversation_id, user_id):
            return pb.Event(typing=pb.Typing(conversation_id=conversation_id, user_id=user_id))
        case PresenceChanged(user_id, status):
            return pb.Event(presence=pb.Presence(user_id=user_id, status=_STATUS_TO_PB[status]))
        case SessionEnded(reason, message):
            return pb.Event(session_ended=pb.SessionEnded(reason=reason, message=message))


def event_from_pb(event: pb.Event) -> Event:  # noqa: PLR0911 (one return per kind of event)
    """The domain event; ``ValueError`` for an event with no kind or an unknown presence status."""
    kind = event.WhichOneof("kind")
    if kind == "message_new":
        return MessageNew(message_from_pb(event.message_new.message))
    if kind == "message_recalled":
        m = event.message_recalled
        return MessageRecalled(m.conversation_id, m.message_id, m.seq)
    if kind == "message_removed":
        d = event.message_removed
        return MessageRemoved(d.conversation_id, d.message_id, d.seq, d.reason)
    if kind == "conversation_read":
        r = event.conversation_read
        return ConversationRead(r.conversation_id, r.user_id, r.seq)
    if kind == "typing":
        return Typing(event.typing.conversation_id, event.typing.user_id)
    if kind == "presence" and event.presence.status in _STATUS_FROM_PB:
        return PresenceChanged(event.presence.user_id, _STATUS_FROM_PB[event.presence.status])
    if kind == "session_ended" and event.session_ended.reason:
        return SessionEnded(event.session_ended.reason, event.session_ended.message)
    raise ValueError(f"event of unknown kind {kind!r}")
