"""Who may see and write to a conversation: membership (cached on the send path) and blocks.

The send path's view of a membership (the ``Gate``) is read cache-aside: membership changes commit, then
invalidate the members' gates (delete now, and again after the replica-lag window). Block checks come from the
account service and are cached for a short TTL only (no invalidation crosses services): docs/CACHE.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import errors
from tidings.pkg.cache.ports import ReadThrough
from tidings.service.chat.biz.model import Conversation, Kind, Member, direct_pair
from tidings.service.chat.biz.ports import ConversationRepo, UserDirectory


@dataclass(frozen=True)
class Gate:
    """What the send path needs to know about a member's conversation; cheap to cache."""

    kind: Kind
    # The other member of a direct conversation (blocks are checked against them).
    peer_id: int | None
    # False for a former member (they hear NOT_A_MEMBER).
    active: bool = True


# Block checks of one group creation or addition running at once (each is a call to the account service, cached).
_BLOCK_CHECKS = 16

# (conversation_id, user_id) -> the user's gate; no entry (None) when the conversation or membership does not exist.
GateCache = ReadThrough[tuple[int, int], Gate]
# The canonical pair (direct_pair) -> whether either blocked the other.
BlockCache = ReadThrough[tuple[int, int], bool]


class Access:
    def __init__(
        self,
        conversations: ConversationRepo,
        directory: UserDirectory,
        *,
        gates: GateCache | None = None,
        blocks: BlockCache | None = None,
    ) -> None:
        self._conversations = conversations
        self._directory = directory
        self._gates = gates
        self._blocks = blocks

    async def require_conversation(self, conversation_id: int) -> Conversation:
        """The conversation, read fresh, for an operator (no membership needed); CONVERSATION_NOT_FOUND if it is
        unknown or deleted."""
        conversation = await self._conversations.get(conversation_id)
        if conversation is None:
            raise _not_found(conversation_id)
        return conversation

    async def require_member(self, conversation_id: int, user_id: int) -> tuple[Conversation, Member]:
        """The conversation and the caller's current membership, read fresh; the reason why not otherwise."""
        conversation = await self._conversations.get(conversation_id)
        member = await self._conversations.member(conversation_id, user_id) if conversation is not None else None
        if conversation is None or member is None:
            raise _not_found(conversation_id)
        if not member.active:
            raise _not_a_member(conversation_id)
        return conversation, member

    async def gate(self, conversation_id: int, user_id: int) -> Gate:
        """Like ``require_member``, from the cache when it can be."""
        key = (conversation_id, user_id)
        gate = await (self._gates.get(key, self._load_gate) if self._gates is not None else self._load_gate(key))
        if gate is None:
            raise _not_found(conversation_id)
        if not gate.active:
            raise _not_a_member(conversation_id)
        return gate

    async def refusals(self, sends: Sequence[tuple[int, int]]) -> list[errors.TidingsError | None]:
        """The send path's check of many ``(conversation_id, sender_id)`` at once: per send ``None`` where the
        sender may write, else why not (no such conversation, not a member, blocked by the peer of a direct chat).
        One cache read for all the gates and one for the blocks, whatever the number of sends."""
        keys = list(dict.fromkeys(sends))
        gates = await (
            self._gates.get_many(keys, self._load_gates) if self._gates is not None else self._load_gates(keys)
        )
        pairs = list(
            {
                direct_pair(user_id, gate.peer_id)
                for (_, user_id), gate in gates.items()
                if gate.kind is Kind.DIRECT and gate.peer_id is not None
            }
        )
        blocked = await (
            self._blocks.get_many(pairs, self._load_blocks) if self._blocks is not None else self._load_blocks(pairs)
        )
        answers: list[errors.TidingsError | None] = []
        for conversation_id, user_id in sends:
            gate = gates.get((conversation_id, user_id))
            if gate is None:
                answers.append(_not_found(conversation_id))
            elif not gate.active:
                answers.append(_not_a_member(conversation_id))
            elif gate.peer_id is not None and blocked.get(direct_pair(user_id, gate.peer_id)):
                answers.append(chat_errors.user_blocked("you cannot write to this user", user_id=str(gate.peer_id)))
            else:
                answers.append(None)
        return answers

    async def forget(self, conversation_id: int, user_ids: Sequence[int]) -> None:
        """Call after a membership change committed: the members' gates are read fresh from now on."""
        if self._gates is not None and user_ids:
            await self._gates.invalidate([(conversation_id, user) for user in user_ids], entity_id=conversation_id)

    async def blocked(self, user_a: int, user_b: int) -> bool:
        pair = direct_pair(user_a, user_b)
        if self._blocks is None:
            return await self._load_block(pair)
        return bool(await self._blocks.get(pair, self._load_block))

    async def blocked_among(self, user_id: int, others: Sequence[int]) -> list[int]:
        """Those of ``others`` who blocked ``user_id`` or were blocked by them, in order, each listed once; checked
        side by side (each check is cached briefly)."""
        wanted = [other for other in dict.fromkeys(others) if other != user_id]
        gate = asyncio.Semaphore(_BLOCK_CHECKS)

        async def check(other: int) -> bool:
            async with gate:
                return await self.blocked(user_id, other)

        verdicts = await asyncio.gather(*(check(other) for other in wanted))
        return [other for other, blocked in zip(wanted, verdicts, strict=True) if blocked]

    async def _load_gate(self, key: tuple[int, int]) -> Gate | None:
        conversation_id, user_id = key
        conversation = await self._conversations.get(conversation_id)
        member = await self._conversations.member(conversation_id, user_id) if conversation is not None else None
        if conversation is None or member is None:
            return None
        peer_id = None
        if conversation.kind is Kind.DIRECT:
            members = (await self._conversations.member_ids([conversation_id])).get(conversation_id, [])
            peer_id = next((other for other in members if other != user_id), None)
        return Gate(conversation.kind, peer_id, member.active)

    async def _load_gates(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], Gate]:
        # Misses only (the cache answers the rest), so one load per key is fine.
        gates = await asyncio.gather(*(self._load_gate(key) for key in keys))
        return {key: gate for key, gate in zip(keys, gates, strict=True) if gate is not None}

    async def _load_block(self, pair: tuple[int, int]) -> bool:
        (blocked,) = await self._directory.blocked_pairs([pair])
        return blocked

    async def _load_blocks(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], bool]:
        return dict(zip(pairs, await self._directory.blocked_pairs(pairs), strict=True))


def _not_found(conversation_id: int) -> errors.TidingsError:
    return chat_errors.conversation_not_found("no such conversation", conversation_id=str(conversation_id))


def _not_a_member(conversation_id: int) -> errors.TidingsError:
    return chat_errors.not_a_member(
        "you are no longer a member of this conversation", conversation_id=str(conversation_id)
    )
