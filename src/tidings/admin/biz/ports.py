"""The ports the back office's use cases need; ``data`` implements them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tidings.admin.biz.model import (
    AuditEntry,
    AuditQuery,
    AuditRecord,
    AuditResult,
    ConversationDetail,
    ConversationSummary,
    DeadLetters,
    Device,
    GroupLag,
    HistoryPage,
    Hits,
    Operator,
    UserRecord,
)
from tidings.service.chat.message import Message


class OperatorRepo(Protocol):
    async def add(self, operator: Operator) -> None:
        """Store a new operator; OPERATOR_EXISTS if the username is taken."""

    async def by_username(self, username: str) -> Operator | None: ...

    async def get(self, operator_id: int) -> Operator | None: ...

    async def all(self) -> list[Operator]: ...


class SessionRepo(Protocol):
    async def add(self, token_hash: str, operator_id: int, csrf_token: str, now_ms: int, expires_at_ms: int) -> None:
        """Store a session (and drop the expired ones)."""

    async def find(self, token_hash: str, now_ms: int) -> tuple[int, str, int] | None:
        """The operator id, CSRF token and expiry of a live session, or None."""

    async def remove(self, token_hash: str) -> None: ...


class LoginFailures(Protocol):
    """Failed logins per username (whether or not an operator has it)."""

    async def locked_until(self, username: str) -> int:
        """Until when (ms) logins for ``username`` are refused; 0 if they are not."""

    async def failed(self, username: str, now_ms: int, *, max_failures: int, lock_ms: int) -> int:
        """Count a failure; once ``max_failures`` are counted, lock for ``lock_ms`` and start counting anew.
        Returns until when the username is locked (0: not locked)."""

    async def clear(self, username: str) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...


class AuditLog(Protocol):
    """Append-only: entries and results are added, never changed or removed."""

    async def begin(self, entry: AuditEntry) -> None: ...

    async def finish(self, result: AuditResult) -> None: ...

    async def page(self, query: AuditQuery) -> list[AuditRecord]:
        """Newest first, filtered."""


class Accounts(Protocol):
    """The account service's operator calls."""

    async def inspect(self, user_ids: Sequence[int] = (), usernames: Sequence[str] = ()) -> list[UserRecord]: ...

    async def ban(self, user_id: int, operator_id: int, reason: str) -> tuple[UserRecord, UserRecord]:
        """The user before and after."""

    async def unban(self, user_id: int, operator_id: int, reason: str) -> tuple[UserRecord, UserRecord]: ...

    async def reset_password(self, user_id: int, operator_id: int, reason: str) -> str:
        """The temporary password."""

    async def search(self, query: str, limit: int) -> list[int]:
        """Ids of users whose username or display name starts with the query."""


class Chats(Protocol):
    """The chat service's operator calls."""

    async def conversations_of(self, user_id: int) -> list[ConversationSummary]: ...

    async def inspect(self, conversation_id: int) -> ConversationDetail: ...

    async def history(
        self, operator_id: int, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> HistoryPage: ...

    async def search(
        self, operator_id: int, query: str, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Hits: ...

    async def remove(self, operator_id: int, conversation_id: int, message_id: int, reason: str) -> Message:
        """Recall the message for everyone, with the moderation reason; the message afterwards."""

    async def delete_group(self, operator_id: int, conversation_id: int, reason: str) -> ConversationSummary:
        """The group as it was."""


class Devices(Protocol):
    """Who is connected now (the route table)."""

    async def of(self, user_id: int) -> list[Device]: ...


class Pipeline(Protocol):
    """The event bus as operators watch it."""

    async def lag(self) -> list[GroupLag]: ...

    async def dead_letters(self) -> list[DeadLetters]: ...
