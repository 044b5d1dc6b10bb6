"""What a client may do on its connection: ping, type, send and mark read (the last two as the REST API does).

Every frame that does something (send, read, typing) checks the connection's token first, as a REST request
would: a token that expired, was revoked, or whose user was banned closes the connection (UNAUTHENTICATED) and
the frame is not served. Revocation is learnt from account at most every few seconds per user (the bff's token
verifier), so the check costs a local signature check on most frames.

Typing is ephemeral: checked against membership (cached, invalidated when it changes), relayed to the other
members' live sessions, never stored, and limited per user (all their connections together), as sends are.
"""

from __future__ import annotations

from typing import assert_never

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.ports import AccountRepo, ChatRepo
from tidings.bff.biz.realtime.events import (
    Inbound,
    Marked,
    MarkRead,
    Outbound,
    Ping,
    Pong,
    SendText,
    Sent,
    StartTyping,
    Typing,
)
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.pkg.errors import TidingsError


class Frames:
    """Answers one client frame at a time; raises ``TidingsError`` for a frame that cannot be served."""

    def __init__(self, hub: Hub, chats: ChatRepo, accounts: AccountRepo) -> None:
        self._hub = hub
        self._chats = chats
        self._accounts = accounts
        self._members = hub.audiences.members

    async def answer(self, session: Session, frame: Inbound) -> Outbound | None:
        """The frame's answer (None for typing, which has none)."""
        if not isinstance(frame, Ping):
            await self._still_signed_in(session)
        match frame:
            case Ping(ref):
                return Pong(ref)
            case StartTyping(conversation_id):
                await self.typing(session, conversation_id)
                return None
            case SendText(conversation_id, client_msg_id, text, ref):
                await self._hub.quotas.send(session.user_id)
                message, duplicate = await self._chats.send(session.user_id, conversation_id, client_msg_id, text)
                return Sent(ref, message, duplicate)
            case MarkRead(conversation_id, seq, ref):
                read_seq = await self._chats.mark_read(session.user_id, conversation_id, seq)
                return Marked(ref, conversation_id, read_seq)
            case _:
                assert_never(frame)

    async def _still_signed_in(self, session: Session) -> None:
        """Raise (and close the connection) if the session's token no longer counts: expired, revoked, banned."""
        try:
            identity = await self._accounts.identify(session.token)
        except TidingsError as error:
            if error.code in (401, 403):
                session.close(CloseReason.UNAUTHENTICATED)
            raise
        if identity.user_id != session.user_id:
            session.close(CloseReason.UNAUTHENTICATED)
            raise common_errors.unauthenticated("the access token no longer names this connection's user")

    async def typing(self, session: Session, conversation_id: int) -> None:
        """Relay "typing" to the conversation's other members who are online, on any instance."""
        await self._hub.quotas.typing(session.user_id)
        members = await self._members_of(session.user_id, conversation_id)
        others = [member for member in members if member != session.user_id]
        if others:
            await self._hub.deliver_to_users(Typing(conversation_id, session.user_id), others)

    async def _members_of(self, user_id: int, conversation_id: int) -> frozenset[int]:
        """The members, if ``user_id`` is one (cached); chat's error (not found / not a member) otherwise."""

        async def load(_: int) -> tuple[int, ...]:
            return (await self._chats.get(user_id, conversation_id)).member_ids

        members = await self._members.get(conversation_id, load)
        if members is None or user_id not in members:
            # Not in the cached list (a non-member, or one who joined since): chat answers, or raises its error.
            members = await load(conversation_id)
        return frozenset(members)
