"""What the bff shows clients, independent of the services' wire types: users, conversations, messages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tidings.service.account.user import User
from tidings.service.chat.message import Message


@dataclass(frozen=True)
class Identity:
    """Who an access token speaks for, and until when (a live connection is closed at ``expires_at_ms``)."""

    user_id: int
    expires_at_ms: int


class Kind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"


@dataclass(frozen=True)
class Conversation:
    id: int
    kind: Kind
    title: str
    member_ids: tuple[int, ...]
    max_seq: int
    read_seq: int
    unread_count: int
    last_message: Message | None
    updated_at_ms: int


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    has_more: bool


@dataclass(frozen=True)
class Found:
    """A message a search found: where its text matched (``[start, end)`` code point spans) and who sent it."""

    message: Message
    highlights: tuple[tuple[int, int], ...]
    sender_name: str


@dataclass(frozen=True)
class Findings:
    found: list[Found]
    # Where the next page starts, or ``None`` after the last page.
    next_cursor: str | None


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Snapshot:
    """Everything a client needs to draw its home screen after (re)connecting, in one round trip."""

    me: User
    conversations: list[Conversation]
    presence: dict[int, Presence]
