"""Conversations and membership on fakes: direct pairs, groups, who may see and change what."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.chat.fakes import World
from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import errors
from tidings.service.chat.biz.model import MAX_GROUP_MEMBERS, Kind


@pytest.fixture
def world() -> World:
    return World()


async def test_a_direct_conversation_is_created_once_per_pair_whoever_asks(world: World) -> None:
    first, created = await world.chats.create_direct(1, 2)
    again, created_again = await world.chats.create_direct(1, 2)
    reverse, created_reverse = await world.chats.create_direct(2, 1)
    assert (created, created_again, created_reverse) == (True, False, False)
    assert first.conversation.id == again.conversation.id == reverse.conversation.id
    assert first.conversation.kind is Kind.DIRECT
    assert first.conversation.title == ""
    assert first.member_ids == (1, 2)


async def test_racing_direct_creations_make_one_conversation(world: World) -> None:
    results = await asyncio.gather(*(world.chats.create_direct(*pair) for pair in [(3, 4), (4, 3)] * 5))
    assert len({view.conversation.id for view, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(world.conversations.conversations) == 1


async def test_a_direct_conversation_needs_another_existing_unblocked_user(world: World) -> None:
    with pytest.raises(errors.TidingsError) as itself:
        await world.chats.create_direct(1, 1)
    assert itself.value.reason == "INVALID_ARGUMENT"
    assert itself.value.metadata["field"] == "peer_id"
    with pytest.raises(errors.TidingsError) as missing:
        await world.chats.create_direct(1, 999)
    assert account_errors.is_user_not_found(missing.value)
    world.directory.blocks.add((2, 1))
    with pytest.raises(errors.TidingsError) as blocked:
        await world.chats.create_direct(1, 2)
    assert chat_errors.is_user_blocked(blocked.value)
    assert world.conversations.conversations == {}


async def test_a_group_has_its_creator_as_owner_and_member(world: World) -> None:
    view = await world.chats.create_group(1, "team", [2, 3, 3, 1])
    assert view.conversation.kind is Kind.GROUP
    assert view.conversation.owner_id == 1
    assert view.member_ids == (1, 2, 3)
    assert view.read_seq == 0
    assert view.unread_count == 0
    assert view.last_message is None


async def test_group_members_must_exist(world: World) -> None:
    with pytest.raises(errors.TidingsError) as failed:
        await world.chats.create_group(1, "team", [2, 500, 501])
    assert account_errors.is_user_not_found(failed.value)
    assert failed.value.metadata["user_ids"] == "500,501"


async def test_a_group_stops_at_its_member_limit() -> None:
    world = World(users=set(range(1, MAX_GROUP_MEMBERS + 3)))
    with pytest.raises(errors.TidingsError) as too_many:
        await world.chats.create_group(1, "big", list(range(2, MAX_GROUP_MEMBERS + 2)))
    assert chat_errors.is_group_too_large(too_many.value)
    assert too_many.value.metadata["limit"] == str(MAX_GROUP_MEMBERS)
    full = await world.chats.create_group(1, "full", list(range(2, MAX_GROUP_MEMBERS + 1)))
    assert len(full.member_ids) == MAX_GROUP_MEMBERS
    with pytest.raises(errors.TidingsError) as one_more:
        await world.chats.add_members(1, full.conversation.id, [MAX_GROUP_MEMBERS + 1])
    assert chat_errors.is_group_too_large(one_more.value)


async def test_members_add_others_and_existing_members_are_skipped(world: World) -> None:
    group = await world.chats.create_group(1, "team", [2])
    view = await world.chats.add_members(2, group.conversation.id, [2, 3, 4])
    assert view.member_ids == (1, 2, 3, 4)
    assert view.conversation.member_count == 4
    with pytest.raises(errors.TidingsError) as stranger:
        await world.chats.add_members(9, group.conversation.id, [5])
    assert chat_errors.is_conversation_not_found(stranger.value)


async def test_members_cannot_be_added_to_or_removed_from_a_direct_conversation(world: World) -> None:
    direct, _ = await world.chats.create_direct(1, 2)
    for change in (
        world.chats.add_members(1, direct.conversation.id, [3]),
        world.chats.remove_member(1, direct.conversation.id, 2),
    ):
        with pytest.raises(errors.TidingsError) as failed:
            await change
        assert chat_errors.is_not_a_group(failed.value)


async def test_nobody_puts_someone_who_blocked_them_into_a_group_by_creating_or_adding(world: World) -> None:
    world.directory.blocks.add((3, 1))  # 3 blocked 1
    world.directory.blocks.add((1, 4))  # 1 blocked 4
    with pytest.raises(errors.TidingsError) as refused:
        await world.chats.create_group(1, "team", [2, 3, 4])
    assert chat_errors.is_user_blocked(refused.value)
    assert refused.value.metadata["user_ids"] == "3,4"
    assert world.conversations.conversations == {}
    group = await world.chats.create_group(1, "team", [2])
    with pytest.raises(errors.TidingsError) as added:
        await world.chats.add_members(1, group.conversation.id, [3])
    assert chat_errors.is_user_blocked(added.value)
    # Another member whom 3 did not block may add them: the block is between two people.
    assert 3 in (await world.chats.add_members(2, group.conversation.id, [3])).member_ids


async def test_only_the_owner_removes_others_but_anyone_may_leave(world: World) -> None:
    group = await world.chats.create_group(1, "team", [2, 3])
    cid = group.conversation.id
    with pytest.raises(errors.TidingsError) as not_owner:
        await world.chats.remove_member(2, cid, 3)
    assert chat_errors.is_not_group_owner(not_owner.value)
    assert (await world.chats.remove_member(1, cid, 3)).member_ids == (1, 2)
    left = await world.chats.remove_member(2, cid, 2)
    assert left.member_ids == (1,)
    for former in (2, 3):
        with pytest.raises(errors.TidingsError) as gone:
            await world.chats.get(former, cid)
        assert chat_errors.is_not_a_member(gone.value)
    with pytest.raises(errors.TidingsError) as never:
        await world.chats.get(4, cid)
    assert chat_errors.is_conversation_not_found(never.value)
    back = await world.chats.add_members(1, cid, [2])
    assert back.member_ids == (1, 2)


async def test_an_owner_who_leaves_hands_the_group_on_to_the_oldest_member_who_may_then_moderate(
    world: World,
) -> None:
    group = await world.chats.create_group(1, "team", [2])
    cid = group.conversation.id
    world.clock.advance(1000)
    await world.chats.add_members(2, cid, [3])
    left = await world.chats.remove_member(1, cid, 1)
    assert left.conversation.owner_id == 2
    assert (await world.chats.remove_member(2, cid, 3)).member_ids == (2,)


async def test_a_removed_member_can_no_longer_send_through_the_same_instance(world: World) -> None:
    group = await world.chats.create_group(1, "team", [2])
    cid = group.conversation.id
    await world.msgs.send(cid, 2, "before", "hi")  # caches the membership
    await world.chats.remove_member(1, cid, 2)
    with pytest.raises(errors.TidingsError) as removed:
        await world.msgs.send(cid, 2, "after", "hi")
    assert chat_errors.is_not_a_member(removed.value)


async def test_conversations_are_listed_newest_activity_first_in_pages(world: World) -> None:
    ids = []
    for peer in range(2, 8):
        view, _ = await world.chats.create_direct(1, peer)
        ids.append(view.conversation.id)
        world.clock.advance(10)
    # A message makes the oldest conversation the newest.
    await world.msgs.send(ids[0], 1, "m1", "hello")
    await world.persist()
    pages, cursor = [], None
    while True:
        page = await world.chats.list_page(1, 4, cursor)
        pages.append([view.conversation.id for view in page.views])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [[ids[0], ids[5], ids[4], ids[3]], [ids[2], ids[1]]]
    first = (await world.chats.list_page(1, 1, None)).views[0]
    assert first.last_message is not None
    assert first.last_message.text == "hello"


async def test_states_cover_the_asked_conversations_the_caller_is_in(world: World) -> None:
    a, _ = await world.chats.create_direct(1, 2)
    b = await world.chats.create_group(1, "b", [3])
    other = await world.chats.create_group(5, "not mine", [6])
    for n in range(3):
        await world.msgs.send(b.conversation.id, 3, f"m{n}", "x")
    await world.persist()
    await world.msgs.mark_read(1, b.conversation.id, 1)
    states = await world.chats.states(1, [b.conversation.id, other.conversation.id, a.conversation.id])
    assert [(s.conversation_id, s.max_seq, s.read_seq, s.unread_count) for s in states] == [
        (b.conversation.id, 3, 1, 2),
        (a.conversation.id, 0, 0, 0),
    ]
    everything = await world.chats.states(1, [])
    assert {s.conversation_id for s in everything} == {a.conversation.id, b.conversation.id}
