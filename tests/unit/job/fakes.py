"""In-memory fakes of the job's ports that stand for another module's store: they are that module's fakes, held to
its store contract (test_fakes.py), with what the job's tests observe added."""

from __future__ import annotations

from collections.abc import Sequence

from tests.unit.chat import fakes as chat_fakes
from tidings.service.chat.biz.model import Conversation, Kind, Member, Role


class FakeConversations(chat_fakes.FakeConversations):
    """Chat's conversations as the push job reads their audiences, counting the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def seed(self, conversation_id: int, kind: Kind, member_ids: Sequence[int]) -> None:
        """A conversation with ``member_ids`` as its (active) members, as chat would have stored it."""
        owner = 0 if kind is Kind.DIRECT else member_ids[0]
        self.conversations[conversation_id] = Conversation(
            conversation_id, kind, "" if kind is Kind.DIRECT else "t", owner, 0, None, 0, 0, len(member_ids)
        )
        for user in member_ids:
            role = Role.OWNER if user == owner else Role.MEMBER
            self.members[(conversation_id, user)] = Member(conversation_id, user, role, 0, 0)

    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> dict[int, tuple[Kind, list[int]]]:
        self.reads += 1
        return await super().kinds_and_members(conversation_ids)
