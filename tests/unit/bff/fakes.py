"""In-memory fakes of the bff's ports: just enough behaviour to drive the HTTP layer."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace

from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Conversation, Findings, Found, Identity, Kind, Page, Presence
from tidings.bff.biz.quotas import Quotas
from tidings.bff.wire import quotas
from tidings.conf import LimitsConf, RealtimeConf
from tidings.pkg.ratelimit import MemoryRateLimiter
from tidings.service.account.user import Session, User
from tidings.service.chat.message import Message

NOW = 1_800_000_000_000
# Tokens of the fakes expire long after any test (real-time tests set ``expiry`` to test expiry).
FAR_FUTURE_MS = 4_000_000_000_000


class FakeAccounts:
    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.passwords: dict[str, str] = {}
        self._ids = itertools.count(10**15)
        # Token checks as the real-time hub makes them: revocation, expiry, an unreachable account service.
        self.revoked: set[str] = set()
        self.expiry: dict[str, int] = {}
        self.unavailable = False
        self.identified: list[str] = []
        self.blocks: set[tuple[int, int]] = set()
        self.login_attempts = 0

    async def register(self, username: str, password: str, display_name: str | None) -> Session:
        if any(u.username == username for u in self.users.values()):
            raise account_errors.username_taken("taken", username=username)
        user = User(next(self._ids), username, display_name or username, "", "", NOW)
        self.users[user.id] = user
        self.passwords[username] = password
        return self._session(user)

    async def login(self, username: str, password: str) -> Session:
        self.login_attempts += 1  # each would hash the password
        user = next((u for u in self.users.values() if u.username == username), None)
        if user is None or self.passwords[username] != password:
            raise account_errors.invalid_credentials("wrong username or password")
        return self._session(user)

    async def refresh(self, refresh_token: str) -> Session:
        user_id = refresh_token.removeprefix("refresh-")
        if not user_id.isdigit() or int(user_id) not in self.users:
            raise account_errors.token_invalid("refresh token is not valid")
        return self._session(self.users[int(user_id)])

    def _session(self, user: User) -> Session:
        return Session(user, f"token-{user.id}", f"refresh-{user.id}", 900)

    async def verify(self, access_token: str) -> int:
        return (await self.identify(access_token)).user_id

    async def identify(self, access_token: str) -> Identity:
        self.identified.append(access_token)
        if self.unavailable:
            raise common_errors.unavailable("account is down")
        if access_token in self.revoked:
            raise account_errors.token_revoked("access token was revoked")
        user_id = access_token.removeprefix("token-")
        if not user_id.isdigit() or int(user_id) not in self.users:
            raise account_errors.token_invalid("access token is not valid")
        return Identity(int(user_id), self.expiry.get(access_token, FAR_FUTURE_MS))

    def add(self, username: str) -> tuple[int, str]:
        """A user made directly (no password), and their access token."""
        user = User(next(self._ids), username, username, "", "", NOW)
        self.users[user.id] = user
        return user.id, f"token-{user.id}"

    async def get(self, user_id: int) -> User:
        if user_id not in self.users:
            raise account_errors.user_not_found("no such user")
        return self.users[user_id]

    async def get_many(self, user_ids: list[int]) -> list[User]:
        return [self.users[i] for i in user_ids if i in self.users]

    async def update_profile(
        self, user_id: int, display_name: str | None, bio: str | None, avatar_url: str | None
    ) -> User:
        user = self.users[user_id]
        self.users[user_id] = replace(
            user,
            display_name=display_name if display_name is not None else user.display_name,
            bio=bio if bio is not None else user.bio,
            avatar_url=avatar_url if avatar_url is not None else user.avatar_url,
        )
        return self.users[user_id]

    async def search(self, query: str, limit: int) -> list[User]:
        return [u for u in self.users.values() if u.username.startswith(query)][:limit]

    async def block(self, user_id: int, blocked_id: int) -> None:
        if user_id == blocked_id:
            raise account_errors.cannot_block_self("you cannot block yourself", field="user_id")
        await self.get(blocked_id)
        self.blocks.add((user_id, blocked_id))

    async def unblock(self, user_id: int, blocked_id: int) -> None:
        self.blocks.discard((user_id, blocked_id))


class FakeChats:
    def __init__(self) -> None:
        self.conversations: dict[int, Conversation] = {}
        self.messages: dict[int, list[Message]] = {}
        self.sent: dict[tuple[int, str], Message] = {}
        self.history_calls: list[tuple[int | None, int | None, int]] = []
        self.search_calls: list[tuple[str, int | None, str | None, int]] = []
        # Searches answer SEARCH_UNAVAILABLE while set (the index is down).
        self.search_down = False
        self._ids = itertools.count(2 * 10**15)

    def _mine(self, user_id: int, conversation_id: int) -> Conversation:
        conv = self.conversations.get(conversation_id)
        if conv is None or user_id not in conv.member_ids:
            raise chat_errors.conversation_not_found("no such conversation")
        return conv

    async def create_direct(self, user_id: int, peer_id: int) -> tuple[Conversation, bool]:
        for conv in self.conversations.values():
            if conv.kind is Kind.DIRECT and set(conv.member_ids) == {user_id, peer_id}:
                return conv, False
        conv = Conversation(next(self._ids), Kind.DIRECT, "", (user_id, peer_id), 0, 0, 0, None, NOW)
        self.conversations[conv.id] = conv
        return conv, True

    async def create_group(self, user_id: int, title: str, member_ids: list[int]) -> Conversation:
        members = (user_id, *[m for m in member_ids if m != user_id])
        conv = Conversation(next(self._ids), Kind.GROUP, title, members, 0, 0, 0, None, NOW)
        self.conversations[conv.id] = conv
        return conv

    async def get(self, user_id: int, conversation_id: int) -> Conversation:
        return self._mine(user_id, conversation_id)

    async def for_user(self, user_id: int) -> list[Conversation]:
        return [c for c in self.conversations.values() if user_id in c.member_ids]

    async def add_members(self, user_id: int, conversation_id: int, member_ids: list[int]) -> Conversation:
        conv = self._mine(user_id, conversation_id)
        conv = replace(conv, member_ids=tuple(dict.fromkeys((*conv.member_ids, *member_ids))))
        self.conversations[conv.id] = conv
        return conv

    async def remove_member(self, user_id: int, conversation_id: int, member_id: int) -> Conversation:
        conv = self._mine(user_id, conversation_id)
        conv = replace(conv, member_ids=tuple(m for m in conv.member_ids if m != member_id))
        self.conversations[conv.id] = conv
        return conv

    async def send(self, user_id: int, conversation_id: int, client_msg_id: str, text: str) -> tuple[Message, bool]:
        conv = self._mine(user_id, conversation_id)
        if (user_id, client_msg_id) in self.sent:
            return self.sent[(user_id, client_msg_id)], True
        message = Message(next(self._ids), conv.id, conv.max_seq + 1, user_id, client_msg_id, text, NOW, False)
        self.conversations[conv.id] = replace(conv, max_seq=message.seq, last_message=message)
        self.messages.setdefault(conv.id, []).append(message)
        self.sent[(user_id, client_msg_id)] = message
        return message, False

    async def history(
        self, user_id: int, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> Page:
        self._mine(user_id, conversation_id)
        self.history_calls.append((after_seq, before_seq, limit))
        messages = self.messages.get(conversation_id, [])
        return Page(messages[:limit], len(messages) > limit)

    async def search(
        self, user_id: int, query: str, *, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Findings:
        """Case-folded substrings of every word, newest first; the cursor is the offset of the next page."""
        self.search_calls.append((query, conversation_id, cursor, limit))
        if self.search_down:
            raise common_errors.search_unavailable("message search is unavailable")
        if cursor is not None and not cursor.isdigit():
            raise common_errors.invalid_argument("cursor: not a cursor this search returned", field="cursor")
        mine = [self._mine(user_id, conversation_id)] if conversation_id else await self.for_user(user_id)
        words = [word.casefold() for word in query.split()]
        hits = sorted(
            (
                m
                for conv in mine
                for m in self.messages.get(conv.id, [])
                if not m.recalled and all(word in m.text.casefold() for word in words)
            ),
            key=lambda m: (m.created_at_ms, m.id),
            reverse=True,
        )
        start = int(cursor or 0)
        page = hits[start : start + limit]
        found = [
            Found(m, tuple((i, i + len(w)) for w in words if (i := m.text.casefold().find(w)) >= 0), "") for m in page
        ]
        return Findings(found, str(start + limit) if start + limit < len(hits) else None)

    async def mark_read(self, user_id: int, conversation_id: int, seq: int) -> int:
        conv = self._mine(user_id, conversation_id)
        return min(seq, conv.max_seq)

    async def recall(self, user_id: int, conversation_id: int, message_id: int) -> Message:
        self._mine(user_id, conversation_id)
        for message in self.messages.get(conversation_id, []):
            if message.id == message_id:
                return replace(message, recalled=True, text="")
        raise chat_errors.message_not_found("no such message")


class FakePresence:
    def __init__(self) -> None:
        self.online: set[int] = set()
        self.asked: list[list[int]] = []

    async def statuses(self, user_ids: Iterable[int]) -> dict[int, Presence]:
        ids = list(user_ids)
        self.asked.append(ids)
        return {i: Presence.ONLINE if i in self.online else Presence.OFFLINE for i in ids}


def local_quotas() -> Quotas:
    """The default limits on this process's own limiter."""
    return quotas(MemoryRateLimiter(), LimitsConf(), RealtimeConf())
