"""The fakes the job's tests run on, held to the contracts of the stores they stand for."""

from __future__ import annotations

import pytest

from tests.contracts.chat_repos import ChatStores, ConversationRepoContract
from tests.unit.chat.fakes import FakeDedup, FakeMessages
from tests.unit.job.fakes import FakeConversations


@pytest.fixture
def stores() -> ChatStores:
    conversations = FakeConversations()
    messages, dedup = FakeMessages(conversations), FakeDedup()
    dedup.stored = messages.stored.values
    return ChatStores(conversations, messages, dedup, dedup.prune)


class TestConversationsAsThePushJobReadsThem(ConversationRepoContract):
    pass
