"""What moderators and admins do, each through the owning service's API and each in the audit log with its reason:
ban and unban a user, remove a message, delete a group, reset a password, create an operator.

Once the caller's role and the reason are checked, the action is recorded; then its target is looked up (an
unknown one fails the action, recorded as failed) and the owning service called. The result holds the target as it
was (``before``) and as it became (``after``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tidings.admin.biz.audit import Audited, Done, Target, checked_reason
from tidings.admin.biz.model import Caller, ConversationDetail, Operator, Role, UserRecord
from tidings.admin.biz.operators import Operators, require
from tidings.admin.biz.ports import Accounts, Chats
from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import errors as chat_errors
from tidings.service.chat.message import Message


class Moderation:
    def __init__(self, accounts: Accounts, chats: Chats, operators: Operators, audited: Audited) -> None:
        self._accounts = accounts
        self._chats = chats
        self._operators = operators
        self._audited = audited

    async def ban(self, caller: Caller, user_id: int, reason: str) -> UserRecord:
        """The user can no longer log in; account revokes their tokens and closes their connections."""
        return await self._ban_or_unban(caller, user_id, reason, ban=True)

    async def unban(self, caller: Caller, user_id: int, reason: str) -> UserRecord:
        return await self._ban_or_unban(caller, user_id, reason, ban=False)

    async def _ban_or_unban(self, caller: Caller, user_id: int, reason: str, *, ban: bool) -> UserRecord:
        require(caller, Role.MODERATOR)
        reason = checked_reason(reason)
        call = self._accounts.ban if ban else self._accounts.unban

        async def act() -> Done[UserRecord]:
            await self._user(user_id)
            before, after = await call(user_id, caller.operator.id, reason)
            return Done(after, _user_state(before), _user_state(after))

        action = "ban_user" if ban else "unban_user"
        return await self._audited.run(caller, action, Target("user", str(user_id)), reason, act)

    async def reset_password(self, caller: Caller, user_id: int, reason: str) -> str:
        """The temporary password, for the operator to hand over; it is not recorded anywhere."""
        require(caller, Role.ADMIN)
        reason = checked_reason(reason)

        async def act() -> Done[str]:
            await self._user(user_id)
            return Done(await self._accounts.reset_password(user_id, caller.operator.id, reason))

        return await self._audited.run(caller, "reset_password", Target("user", str(user_id)), reason, act)

    async def remove_message(self, caller: Caller, conversation_id: int, seq: int, reason: str) -> Message:
        """Recall the message at ``seq`` for everyone, with the reason shown to the members. MESSAGE_NOT_FOUND."""
        require(caller, Role.MODERATOR)
        reason = checked_reason(reason)

        async def act() -> Done[Message]:
            page = await self._chats.history(
                caller.operator.id, conversation_id, after_seq=seq - 1, before_seq=None, limit=1
            )
            found = [message for message in page.messages if message.seq == seq]
            if not found:
                raise chat_errors.message_not_found(f"no message {seq} in conversation {conversation_id}")
            after = await self._chats.remove(caller.operator.id, conversation_id, found[0].id, reason)
            return Done(after, _message_state(found[0]), _message_state(after))

        target = Target("message", f"{conversation_id}/{seq}")
        return await self._audited.run(caller, "remove_message", target, reason, act)

    async def delete_group(self, caller: Caller, conversation_id: int, reason: str) -> ConversationDetail:
        """The group as it was. NOT_A_GROUP, CONVERSATION_NOT_FOUND."""
        require(caller, Role.MODERATOR)
        reason = checked_reason(reason)

        async def act() -> Done[ConversationDetail]:
            detail = await self._chats.inspect(conversation_id)
            if detail.conversation.kind != "group":
                raise chat_errors.not_a_group("only a group can be deleted")
            await self._chats.delete_group(caller.operator.id, conversation_id, reason)
            before = {
                "title": detail.conversation.title,
                "owner_id": str(detail.conversation.owner_id),
                "members": len(detail.members),
                "messages": detail.message_count,
            }
            return Done(detail, before, {"deleted": True})

        target = Target("conversation", str(conversation_id))
        return await self._audited.run(caller, "delete_group", target, reason, act)

    async def create_operator(
        self, caller: Caller, username: str, password: str, role: Role, *, totp: bool, reason: str
    ) -> tuple[Operator, str]:
        """A new operator and their TOTP secret ("" without one)."""
        require(caller, Role.ADMIN)
        reason = checked_reason(reason)

        async def act() -> Done[tuple[Operator, str]]:
            created, secret = await self._operators.create(username, password, role, totp=totp)
            after = {"id": str(created.id), "role": created.role.value, "totp": bool(secret)}
            return Done((created, secret), None, after)

        target = Target("operator", username.strip().lower())
        return await self._audited.run(caller, "create_operator", target, reason, act)

    async def _user(self, user_id: int) -> UserRecord:
        found = await self._accounts.inspect(user_ids=[user_id])
        if not found:
            raise account_errors.user_not_found(f"no user {user_id}")
        return found[0]


def _user_state(record: UserRecord) -> dict[str, Any]:
    return {"username": record.user.username, "display_name": record.user.display_name, "banned": record.banned}


def _message_state(message: Message) -> dict[str, Any]:
    state = asdict(message)
    state.update(id=str(message.id), conversation_id=str(message.conversation_id), sender_id=str(message.sender_id))
    return state
