"""What the back office works with: operators and their roles and sessions, the audit log, and the users,
conversations and messages as operators see them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tidings.service.account.user import User
from tidings.service.chat.message import Message


class Role(StrEnum):
    """What an operator may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # look users, conversations, messages, the audit log and the stats up
    MODERATOR = "moderator"  # and ban, unban, remove messages, delete groups
    ADMIN = "admin"  # and reset passwords, create operators

    def allows(self, needed: Role) -> bool:
        return _RANKS[self] >= _RANKS[needed]


_RANKS = {Role.VIEWER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Operator:
    id: int
    username: str
    role: Role
    created_at_ms: int
    password_hash: str = ""
    # Base32; empty when the operator has no second factor.
    totp_secret: str = ""

    @property
    def public(self) -> Operator:
        """The operator without their secrets, as answers show them."""
        return Operator(self.id, self.username, self.role, self.created_at_ms)


@dataclass(frozen=True)
class SignedIn:
    """A new session: its token (shown once: the cookie, or a bearer token) and its CSRF token."""

    operator: Operator
    token: str
    csrf_token: str
    expires_at_ms: int


@dataclass(frozen=True)
class Caller:
    """The operator behind a request, and how the request proved it (a cookie needs the CSRF token to change
    anything; a bearer token is never sent by a browser on its own)."""

    operator: Operator
    csrf_token: str
    by_cookie: bool
    expires_at_ms: int = 0


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    # No outcome recorded: the action is in flight, or the back office stopped before it could record one.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AuditEntry:
    """One action, as recorded before it was taken."""

    id: int
    at_ms: int
    operator_id: int
    operator: str
    action: str
    target_kind: str
    target: str
    reason: str
    trace_id: str


@dataclass(frozen=True)
class AuditResult:
    """What became of an action, recorded once after it."""

    entry_id: int
    at_ms: int
    outcome: Outcome
    error: str = ""
    # The target as it was and as it became, where it applies (a target the call could not find has neither).
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditRecord:
    entry: AuditEntry
    result: AuditResult | None

    @property
    def outcome(self) -> Outcome:
        return self.result.outcome if self.result is not None else Outcome.UNKNOWN


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit log (all optional) and where a page starts: entries older than ``before_id``."""

    operator: str = ""
    action: str = ""
    target: str = ""
    text: str = ""
    before_id: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class UserRecord:
    user: User
    banned: bool
    last_active_at_ms: int | None


@dataclass(frozen=True)
class Device:
    """A live connection of a user: its session and the bff instance serving it."""

    session_id: str
    instance: str


@dataclass(frozen=True)
class ConversationSummary:
    id: int
    kind: str
    title: str
    owner_id: int
    member_ids: tuple[int, ...]
    max_seq: int
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True)
class Member:
    user_id: int
    role: str
    read_seq: int
    joined_at_ms: int


@dataclass(frozen=True)
class ConversationDetail:
    conversation: ConversationSummary
    members: list[Member]
    message_count: int
    recalled_count: int


@dataclass(frozen=True)
class UserDetail:
    record: UserRecord
    devices: list[Device]
    conversations: list[ConversationSummary]


@dataclass(frozen=True)
class Hit:
    message: Message
    highlights: tuple[tuple[int, int], ...]
    sender_name: str


@dataclass(frozen=True)
class Hits:
    hits: list[Hit]
    next_cursor: str | None


@dataclass(frozen=True)
class HistoryPage:
    messages: list[Message]
    has_more: bool


@dataclass(frozen=True)
class GroupLag:
    """How far one consumer group is behind on one topic (records not yet committed, all partitions)."""

    group: str
    topic: str
    lag: int


@dataclass(frozen=True)
class DeadLetters:
    """Records a dead-letter topic holds."""

    topic: str
    count: int
