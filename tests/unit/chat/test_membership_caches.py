"""Chat's membership caches on fakes: a membership change is seen by the next request, never a stale gate."""

from __future__ import annotations

import pytest

from tests.unit.chat.fakes import World
from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import errors


@pytest.fixture
def world() -> World:
    return World()


async def test_a_removed_member_cannot_send_on_the_next_request(world: World) -> None:
    group = await world.chats.create_group(1, "g", [2, 3])
    cid = group.conversation.id
    await world.msgs.send(cid, 2, "a", "hi")  # 2's gate is cached now
    await world.chats.remove_member(1, cid, 2)
    with pytest.raises(errors.TidingsError) as refused:
        await world.msgs.send(cid, 2, "b", "hi")
    assert chat_errors.is_not_a_member(refused.value)
    await world.chats.add_members(1, cid, [2])
    assert (await world.msgs.send(cid, 2, "c", "back")).message.seq > 0


async def test_a_non_member_is_remembered_and_refused_without_reloading(world: World) -> None:
    group = await world.chats.create_group(1, "g", [2])
    cid = group.conversation.id
    for n in range(3):
        with pytest.raises(errors.TidingsError) as refused:
            await world.msgs.send(cid, 9, f"x{n}", "hi")
        assert chat_errors.is_conversation_not_found(refused.value)
    assert world.caches.gates.key((cid, 9)) in set(world.cache_store._entries)
    await world.chats.add_members(1, cid, [9])
    assert (await world.msgs.send(cid, 9, "ok", "hi")).message.seq > 0


async def test_member_lists_of_views_follow_membership_changes(world: World) -> None:
    group = await world.chats.create_group(1, "g", [2])
    cid = group.conversation.id
    assert (await world.chats.get(1, cid)).member_ids == (1, 2)
    await world.chats.add_members(1, cid, [3, 4])
    assert (await world.chats.get(1, cid)).member_ids == (1, 2, 3, 4)
    await world.chats.remove_member(1, cid, 3)
    page = await world.chats.list_page(1, 10, None)
    assert page.views[0].member_ids == (1, 2, 4)
