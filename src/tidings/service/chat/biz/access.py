"""Who may see and write to a conversation: membership (cached briefly on the send path) and blocks."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.pkg import errors
from tidings.service.chat.biz.model import Conversation, Kind, Member, direct_pair
from tidings.service.chat.biz.ports import Clock, ConversationRepo, UserDirectory
from tidings.service.chat.biz.ttlcache import TTLCache


@dataclass(frozen=True)
class Gate:
    """What the send path needs to know about a current member's conversation; cheap to cache."""

    kind: Kind
    # The other member of a direct conversation (blocks are checked against them).
    peer_id: int | None


@dataclass(frozen=True)
class AccessPolicy:
    # A member removed through another instance may still send for this long (the cache issue shortens it).
    membership_ttl_s: float = 5.0
    # A block takes effect within this long.
    block_ttl_s: float = 5.0
    max_entries: int = 100_000


class Access:
    def __init__(
        self, conversations: ConversationRepo, directory: UserDirectory, clock: Clock, policy: AccessPolicy
    ) -> None:
        self._conversations = conversations
        self._directory = directory
        # Only current members are cached: someone just added must be able to write at once.
        self._gates: TTLCache[tuple[int, int], Gate] = TTLCache(
            policy.membership_ttl_s, policy.max_entries, clock.monotonic
        )
        self._blocks: TTLCache[tuple[int, int], bool] = TTLCache(
            policy.block_ttl_s, policy.max_entries, clock.monotonic
        )

    async def require_member(self, conversation_id: int, user_id: int) -> tuple[Conversation, Member]:
        """The conversation and the caller's current membership, read fresh; the reason why not otherwise."""
        conversation = await self._conversations.get(conversation_id)
        member = await self._conversations.member(conversation_id, user_id) if conversation is not None else None
        if conversation is None or member is None:
            raise errors.chat.conversation_not_found("no such conversation", conversation_id=str(conversation_id))
        if not member.active:
            raise errors.chat.not_a_member(
                "you are no longer a member of this conversation", conversation_id=str(conversation_id)
            )
        return conversation, member

    async def gate(self, conversation_id: int, user_id: int) -> Gate:
        """Like ``require_member``, from the cache when it can be."""
        key = (conversation_id, user_id)
        gate = self._gates.get(key)
        if gate is None:
            conversation, _ = await self.require_member(conversation_id, user_id)
            peer_id = None
            if conversation.kind is Kind.DIRECT:
                members = (await self._conversations.member_ids([conversation_id])).get(conversation_id, [])
                peer_id = next((other for other in members if other != user_id), None)
            gate = Gate(conversation.kind, peer_id)
            self._gates.put(key, gate)
        return gate

    def forget(self, conversation_id: int, user_id: int) -> None:
        """Drop what this instance knows of a membership that just changed."""
        self._gates.discard((conversation_id, user_id))

    async def blocked(self, user_a: int, user_b: int) -> bool:
        pair = direct_pair(user_a, user_b)
        blocked = self._blocks.get(pair)
        if blocked is None:
            blocked = await self._directory.blocked(*pair)
            self._blocks.put(pair, blocked)
        return blocked
