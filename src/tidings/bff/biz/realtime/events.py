"""What travels on a live connection, independent of WebSocket JSON or gRPC protobuf.

Server -> client: events (``Envelope`` of an ``Event``) and answers to the client's frames (``Ready``, ``Pong``,
``Sent``, ``Marked``, ``Failure``). Client -> server: ``Ping``, ``StartTyping``, ``SendText``, ``MarkRead``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from tidings.bff.biz.model import Presence
from tidings.pkg.errors import TidingsError
from tidings.service.chat.message import Message

T = TypeVar("T")

# The client's tag for a frame, echoed in the answer: an integer on gRPC; an integer or short string on WebSocket.
Ref = int | str | None


@dataclass(frozen=True, slots=True)
class MessageNew:
    message: Message


@dataclass(frozen=True, slots=True)
class MessageRecalled:
    conversation_id: int
    message_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class MessageRemoved:
    """An operator removed the message (it reads as recalled from now on), for ``reason``."""

    conversation_id: int
    message_id: int
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConversationRead:
    conversation_id: int
    user_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class Typing:
    conversation_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    user_id: int
    status: Presence


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The last event of a session the server ends on its own account: ``reason`` is the error's (``USER_BANNED``
    for a ban, else ``TOKEN_REVOKED``), ``message`` is for the user to read."""

    reason: str
    message: str

    @property
    def banned(self) -> bool:
        return self.reason == "USER_BANNED"


Event = MessageNew | MessageRecalled | MessageRemoved | ConversationRead | Typing | PresenceChanged | SessionEnded


class Envelope:
    """One event on its way to many sessions: each wire format encodes it once, however wide the fan-out."""

    __slots__ = ("_encoded", "event")

    def __init__(self, event: Event, **encoded: object) -> None:
        self.event = event
        self._encoded: dict[str, object] = dict(encoded)

    def encoded(self, codec: str, encode: Callable[[Event], T]) -> T:
        """The event as ``codec`` puts it on the wire, computed by ``encode`` on first use."""
        if codec not in self._encoded:
            self._encoded[codec] = encode(self.event)
        return cast(T, self._encoded[codec])


@dataclass(frozen=True, slots=True)
class Ready:
    """First frame of a WebSocket once its route is written (gRPC sends ``x-session-id`` metadata instead)."""

    session_id: str


@dataclass(frozen=True, slots=True)
class Pong:
    ref: Ref


@dataclass(frozen=True, slots=True)
class Sent:
    ref: Ref
    message: Message
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Marked:
    ref: Ref
    conversation_id: int
    read_seq: int


@dataclass(frozen=True, slots=True)
class Failure:
    """The error object of API.md for one client frame; the connection stays open."""

    ref: Ref
    error: TidingsError
    trace_id: str


Outbound = Envelope | Ready | Pong | Sent | Marked | Failure


@dataclass(frozen=True, slots=True)
class Ping:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class StartTyping:
    conversation_id: int
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class SendText:
    conversation_id: int
    client_msg_id: str
    text: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class MarkRead:
    conversation_id: int
    seq: int
    ref: Ref = None


Inbound = Ping | StartTyping | SendText | MarkRead
