"""The services behind the bff, as the bff's use cases need them; ``data/`` implements them over gRPC."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from tidings.bff.biz.model import Conversation, Findings, Identity, Page, Presence
from tidings.bff.biz.realtime.events import Event
from tidings.service.account.user import Session, User
from tidings.service.chat.message import Message


class AccountRepo(Protocol):
    async def register(self, username: str, password: str, display_name: str | None) -> Session: ...
    async def login(self, username: str, password: str) -> Session: ...
    async def refresh(self, refresh_token: str) -> Session: ...

    async def verify(self, access_token: str) -> int:
        """The user id of a genuine, unexpired, unrevoked access token; a TidingsError (401) otherwise."""

    async def identify(self, access_token: str) -> Identity:
        """``verify`` with the token's expiry, for connections that outlive a request; 401 as ``verify``."""

    async def get(self, user_id: int) -> User: ...
    async def get_many(self, user_ids: list[int]) -> list[User]: ...

    async def update_profile(
        self, user_id: int, display_name: str | None, bio: str | None, avatar_url: str | None
    ) -> User: ...

    async def search(self, query: str, limit: int) -> list[User]: ...

    async def block(self, user_id: int, blocked_id: int) -> None:
        """``user_id`` blocks ``blocked_id``: no direct chat between them, neither puts the other into a group."""

    async def unblock(self, user_id: int, blocked_id: int) -> None: ...


class ChatRepo(Protocol):
    async def create_direct(self, user_id: int, peer_id: int) -> tuple[Conversation, bool]:
        """The direct conversation and whether this call created it."""

    async def create_group(self, user_id: int, title: str, member_ids: list[int]) -> Conversation: ...
    async def get(self, user_id: int, conversation_id: int) -> Conversation: ...
    async def for_user(self, user_id: int) -> list[Conversation]: ...
    async def add_members(self, user_id: int, conversation_id: int, member_ids: list[int]) -> Conversation: ...
    async def remove_member(self, user_id: int, conversation_id: int, member_id: int) -> Conversation: ...

    async def send(self, user_id: int, conversation_id: int, client_msg_id: str, text: str) -> tuple[Message, bool]:
        """The message and whether it is a duplicate of an earlier send with the same ``client_msg_id``."""

    async def history(
        self, user_id: int, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> Page: ...

    async def mark_read(self, user_id: int, conversation_id: int, seq: int) -> int: ...
    async def search(
        self, user_id: int, query: str, *, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Findings:
        """Messages of the caller's current conversations (or of one) holding every word of ``query``, newest
        first."""

    async def recall(self, user_id: int, conversation_id: int, message_id: int) -> Message: ...


class PresenceRepo(Protocol):
    async def statuses(self, user_ids: Iterable[int]) -> dict[int, Presence]:
        """Online or offline for each user, looked up in one batch."""


class Relay(Protocol):
    """``Deliver`` on another bff instance, for the events this one originates (typing, presence)."""

    async def deliver(self, instance: str, deliveries: Sequence[tuple[Sequence[str], Event]]) -> list[str]:
        """Queue each event on its sessions there; the session ids no longer connected there."""

    async def close(self) -> None: ...


class RealtimeMetrics(Protocol):
    def connected(self, transport: str) -> None: ...
    def closed(self, transport: str, reason: str) -> None: ...
    def delivered(self, frames: int) -> None: ...
    def bad_frame(self, transport: str) -> None: ...
    def relay_failed(self) -> None: ...
