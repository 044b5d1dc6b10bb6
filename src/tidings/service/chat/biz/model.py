"""Conversations, members and messages as the domain sees them, and the limits they follow (API.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tidings.service.chat.message import Message

MAX_TEXT_LENGTH = 4000
MAX_CLIENT_MSG_ID_LENGTH = 64
MAX_TITLE_LENGTH = 128
MAX_GROUP_MEMBERS = 10_000
RECALL_WINDOW_MS = 120_000
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
LIST_DEFAULT_LIMIT = 100
LIST_MAX_LIMIT = 500
# An operator's reason (a removal's, shown to the members; a deletion's, logged).
MAX_REASON_LENGTH = 500


class Kind(IntEnum):
    DIRECT = 1
    GROUP = 2


class Role(IntEnum):
    OWNER = 1
    MEMBER = 2


@dataclass(frozen=True)
class Conversation:
    id: int
    kind: Kind
    # Empty for a direct conversation.
    title: str
    # The group's creator; 0 for a direct conversation.
    owner_id: int
    # The highest seq stored and visible in history (advanced by the persist job, never backwards).
    max_seq: int
    last_message_id: int | None
    created_at_ms: int
    # The time of the newest message, or of creation.
    updated_at_ms: int
    member_count: int


@dataclass(frozen=True)
class Member:
    conversation_id: int
    user_id: int
    role: Role
    read_seq: int
    joined_at_ms: int
    # False for a former member: they see NOT_A_MEMBER rather than CONVERSATION_NOT_FOUND.
    active: bool = True


@dataclass(frozen=True)
class ConversationView:
    """A conversation as one member sees it: the read state is theirs."""

    conversation: Conversation
    member_ids: tuple[int, ...]
    read_seq: int
    last_message: Message | None

    @property
    def unread_count(self) -> int:
        return unread(self.conversation.max_seq, self.read_seq)


@dataclass(frozen=True)
class ConversationState:
    """Where one member stands in one conversation: what sync needs, no messages."""

    conversation_id: int
    max_seq: int
    read_seq: int
    updated_at_ms: int

    @property
    def unread_count(self) -> int:
        return unread(self.max_seq, self.read_seq)


@dataclass(frozen=True)
class Cursor:
    """Where a page of the conversation list stopped: lists run by ``(updated_at_ms, id)`` descending."""

    updated_at_ms: int
    conversation_id: int


@dataclass(frozen=True)
class ConversationPage:
    views: tuple[ConversationView, ...]
    # Where the next page starts; ``None`` on the last page.
    next_cursor: Cursor | None


@dataclass(frozen=True)
class HistoryPage:
    # Ascending by seq.
    messages: tuple[Message, ...]
    # More messages exist in the direction of paging.
    has_more: bool


@dataclass(frozen=True)
class MessageCounts:
    """How many messages a conversation holds (recalled ones included), and how many of them are recalled."""

    total: int
    recalled: int


@dataclass(frozen=True)
class Inspection:
    """A conversation as operators see it: the view carries no one member's read state (``read_seq`` 0)."""

    view: ConversationView
    # Its current members, longest-standing first.
    members: tuple[Member, ...]
    counts: MessageCounts


@dataclass(frozen=True)
class Sent:
    """The answer to a send: the message (the original one for a retry) and whether it was a retry."""

    message: Message
    duplicate: bool


def unread(max_seq: int, read_seq: int) -> int:
    """Unread is computed on read, never stored: a send writes nothing per member (ARCHITECTURE.md)."""
    return max(0, max_seq - read_seq)


def direct_pair(user_a: int, user_b: int) -> tuple[int, int]:
    """The unordered pair of a direct conversation, in one canonical order."""
    return (user_a, user_b) if user_a < user_b else (user_b, user_a)


def history_limit(limit: int) -> int:
    """0 means the default; more than the maximum is capped (API.md)."""
    return HISTORY_DEFAULT_LIMIT if limit == 0 else min(limit, HISTORY_MAX_LIMIT)


def list_limit(limit: int) -> int:
    return LIST_DEFAULT_LIMIT if limit == 0 else min(limit, LIST_MAX_LIMIT)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent (emptiness only: overlong text has its own reason, MESSAGE_TOO_LONG)."""
    return "must not be empty" if not text else None


def client_msg_id_problem(client_msg_id: str) -> str | None:
    if not 1 <= len(client_msg_id) <= MAX_CLIENT_MSG_ID_LENGTH or not all("!" <= char <= "~" for char in client_msg_id):
        return f"1-{MAX_CLIENT_MSG_ID_LENGTH} printable ASCII characters without spaces"
    return None


def reason_problem(reason: str) -> str | None:
    """Why ``reason`` cannot be an operator's reason: one is required, and it must say something."""
    if not reason.strip():
        return "required: say why"
    if len(reason) > MAX_REASON_LENGTH:
        return f"at most {MAX_REASON_LENGTH} characters"
    return None
