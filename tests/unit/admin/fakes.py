"""In-memory fakes of the back office's ports (the services it calls, the route table, the bus, the audit log)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

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
    Member,
    UserRecord,
)
from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.service.account.user import User
from tidings.service.chat.message import Message


class FakeAccounts:
    def __init__(self) -> None:
        self.users: dict[int, UserRecord] = {}
        self.calls: list[tuple[str, int, int, str]] = []
        self.fail_with: Exception | None = None
        self.search_down = False

    def add(self, user_id: int, username: str) -> None:
        self.users[user_id] = UserRecord(User(user_id, username, username.title(), "", "", 1), False, None)

    async def inspect(self, user_ids: Sequence[int] = (), usernames: Sequence[str] = ()) -> list[UserRecord]:
        wanted = [self.users[i] for i in user_ids if i in self.users]
        wanted += [r for r in self.users.values() if r.user.username in {u.lower() for u in usernames}]
        return list({r.user.id: r for r in wanted}.values())

    async def _set_banned(
        self, name: str, user_id: int, operator_id: int, reason: str, banned: bool
    ) -> tuple[UserRecord, UserRecord]:
        self.calls.append((name, user_id, operator_id, reason))
        if self.fail_with is not None:
            raise self.fail_with
        if user_id not in self.users:
            raise account_errors.user_not_found("no such user")
        before = self.users[user_id]
        self.users[user_id] = dataclasses.replace(before, banned=banned)
        return before, self.users[user_id]

    async def ban(self, user_id: int, operator_id: int, reason: str) -> tuple[UserRecord, UserRecord]:
        return await self._set_banned("ban", user_id, operator_id, reason, True)

    async def unban(self, user_id: int, operator_id: int, reason: str) -> tuple[UserRecord, UserRecord]:
        return await self._set_banned("unban", user_id, operator_id, reason, False)

    async def reset_password(self, user_id: int, operator_id: int, reason: str) -> str:
        self.calls.append(("reset_password", user_id, operator_id, reason))
        return "temporary-Password-1"

    async def search(self, query: str, limit: int) -> list[int]:
        if self.search_down:
            raise common_errors.search_unavailable("search is down")
        return [i for i, r in self.users.items() if r.user.username.startswith(query.lower())][:limit]


class FakeChats:
    def __init__(self) -> None:
        self.conversations: dict[int, ConversationDetail] = {}
        self.messages: dict[int, list[Message]] = {}
        self.removed: list[tuple[int, int, int, str]] = []
        self.deleted: list[int] = []
        self.search_down = False
        self.block: asyncio.Event | None = None
        self.entered = asyncio.Event()

    def add_group(self, conversation_id: int, members: Sequence[int], texts: Sequence[str] = ()) -> None:
        summary = ConversationSummary(conversation_id, "group", "Team", members[0], tuple(members), len(texts), 1, 2)
        self.conversations[conversation_id] = ConversationDetail(
            summary, [Member(m, "member", 0, 1) for m in members], len(texts), 0
        )
        self.messages[conversation_id] = [
            Message(conversation_id * 1000 + seq, conversation_id, seq, members[0], f"c{seq}", text, seq)
            for seq, text in enumerate(texts, start=1)
        ]

    async def conversations_of(self, user_id: int) -> list[ConversationSummary]:
        return [d.conversation for d in self.conversations.values() if user_id in d.conversation.member_ids]

    async def inspect(self, conversation_id: int) -> ConversationDetail:
        if conversation_id not in self.conversations:
            raise chat_errors.conversation_not_found("no such conversation")
        return self.conversations[conversation_id]

    async def history(
        self, operator_id: int, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> HistoryPage:
        await self.inspect(conversation_id)
        stored = self.messages[conversation_id]
        if before_seq is not None:
            older = [m for m in stored if m.seq < before_seq]
            return HistoryPage(older[-limit:], len(older) > limit)
        newer = [m for m in stored if m.seq > (after_seq or 0)]
        return HistoryPage(newer[:limit], len(newer) > limit)

    async def search(
        self, operator_id: int, query: str, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Hits:
        if self.search_down:
            raise common_errors.search_unavailable("search is down")
        return Hits([], None)

    async def remove(self, operator_id: int, conversation_id: int, message_id: int, reason: str) -> Message:
        self.entered.set()
        if self.block is not None:
            await self.block.wait()
        self.removed.append((operator_id, conversation_id, message_id, reason))
        stored = self.messages[conversation_id]
        index = next(i for i, m in enumerate(stored) if m.id == message_id)
        stored[index] = dataclasses.replace(stored[index], text="", recalled=True)
        return stored[index]

    async def delete_group(self, operator_id: int, conversation_id: int, reason: str) -> ConversationSummary:
        self.deleted.append(conversation_id)
        return self.conversations.pop(conversation_id).conversation


class FakeDevices:
    def __init__(self) -> None:
        self.devices: dict[int, list[Device]] = {}

    async def of(self, user_id: int) -> list[Device]:
        return self.devices.get(user_id, [])


class FakePipeline:
    async def lag(self) -> list[GroupLag]:
        return [GroupLag("persist", "chat.message.sent", 3)]

    async def dead_letters(self) -> list[DeadLetters]:
        return [DeadLetters("chat.message.sent.dlq", 1)]


class FakeAuditLog:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.results: list[AuditResult] = []
        self.refuse = False

    async def begin(self, entry: AuditEntry) -> None:
        if self.refuse:
            raise ConnectionError("database unreachable")
        self.entries.append(entry)

    async def finish(self, result: AuditResult) -> None:
        self.results.append(result)

    async def page(self, query: AuditQuery) -> list[AuditRecord]:
        results = {r.entry_id: r for r in self.results}
        return [AuditRecord(e, results.get(e.id)) for e in reversed(self.entries)][: query.limit]
