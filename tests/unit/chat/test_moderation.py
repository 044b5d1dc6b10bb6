"""What operators do through chat, on fakes: inspect a conversation, read any of them without being a member, remove
a message with a reason, and delete a group so that no one is in it any more (searching as an operator is in
test_search.py)."""

from __future__ import annotations

import pytest

from tests.unit.chat.fakes import World
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.service.chat.biz.model import MAX_REASON_LENGTH, RECALL_WINDOW_MS, Role

OPERATOR = 900  # no member of anything


@pytest.fixture
def world() -> World:
    return World()


async def group_with(world: World, count: int, members: tuple[int, ...] = (2, 3)) -> int:
    cid = (await world.chats.create_group(1, "g", list(members))).conversation.id
    for n in range(count):
        await world.msgs.send(cid, 1, f"m{cid}-{n}", f"text {n + 1}")
    await world.persist()
    return cid


def field_of(error: errors.TidingsError) -> str:
    return error.metadata["field"]


# -- inspect --------------------------------------------------------------------------------------------------------


async def test_inspect_shows_members_with_roles_read_marks_and_message_counts(world: World) -> None:
    cid = await group_with(world, 4)
    world.clock.advance(1000)
    await world.chats.add_members(1, cid, [4])
    await world.msgs.mark_read(2, cid, 3)
    first = world.publisher.log[0]
    await world.msgs.recall(cid, first.id, 1, by_operator=False)

    seen = await world.chats.inspect(cid)

    assert [(m.user_id, m.role, m.read_seq) for m in seen.members] == [
        (1, Role.OWNER, 0),
        (2, Role.MEMBER, 3),
        (3, Role.MEMBER, 0),
        (4, Role.MEMBER, 0),
    ]
    assert seen.members[3].joined_at_ms == seen.members[0].joined_at_ms + 1000
    assert (seen.counts.total, seen.counts.recalled) == (4, 1)
    assert seen.view.member_ids == (1, 2, 3, 4)
    assert seen.view.read_seq == 0  # no one member's view
    assert seen.view.last_message is not None
    assert seen.view.last_message.seq == 4


async def test_inspect_of_an_empty_conversation_counts_nothing(world: World) -> None:
    cid = await group_with(world, 0)
    seen = await world.chats.inspect(cid)
    assert (seen.counts.total, seen.counts.recalled, seen.view.last_message) == (0, 0, None)


async def test_inspect_of_an_unknown_or_deleted_conversation_is_not_found(world: World) -> None:
    cid = await group_with(world, 1)
    with pytest.raises(errors.TidingsError) as unknown:
        await world.chats.inspect(cid + 999)
    assert chat_errors.is_conversation_not_found(unknown.value)
    await world.chats.delete(OPERATOR, cid, "spam ring")
    with pytest.raises(errors.TidingsError) as deleted:
        await world.chats.inspect(cid)
    assert chat_errors.is_conversation_not_found(deleted.value)


# -- history read by an operator ------------------------------------------------------------------------------


async def test_an_operator_reads_any_conversations_history_without_being_a_member(world: World) -> None:
    cid = await group_with(world, 5)
    page = await world.msgs.history(OPERATOR, cid, after_seq=0, before_seq=None, limit=3, by_operator=True)
    assert ([m.seq for m in page.messages], page.has_more) == ([1, 2, 3], True)
    back = await world.msgs.history(OPERATOR, cid, after_seq=None, before_seq=None, limit=2, by_operator=True)
    assert [m.seq for m in back.messages] == [4, 5]
    with pytest.raises(errors.TidingsError) as stranger:  # the same call without the flag
        await world.msgs.history(OPERATOR, cid, after_seq=0, before_seq=None, limit=3)
    assert chat_errors.is_conversation_not_found(stranger.value)


async def test_an_operators_history_checks_its_input_and_the_conversation(world: World) -> None:
    cid = await group_with(world, 1)
    with pytest.raises(errors.TidingsError) as negative:
        await world.msgs.history(OPERATOR, cid, after_seq=-1, before_seq=None, limit=3, by_operator=True)
    assert field_of(negative.value) == "after_seq"
    with pytest.raises(errors.TidingsError) as unknown:
        await world.msgs.history(OPERATOR, cid + 999, after_seq=0, before_seq=None, limit=3, by_operator=True)
    assert chat_errors.is_conversation_not_found(unknown.value)
    await world.chats.delete(OPERATOR, cid, "spam ring")
    with pytest.raises(errors.TidingsError) as deleted:
        await world.msgs.history(OPERATOR, cid, after_seq=0, before_seq=None, limit=3, by_operator=True)
    assert chat_errors.is_conversation_not_found(deleted.value)


# -- removal --------------------------------------------------------------------------------------------------------


async def test_an_operator_removes_a_message_with_a_reason_the_event_carries(world: World) -> None:
    cid = await group_with(world, 2)
    message = world.publisher.log[0]
    world.clock.advance(RECALL_WINDOW_MS * 10)  # no window for operators
    removed = await world.msgs.recall(cid, message.id, OPERATOR, by_operator=True, moderation_reason="harassment")
    assert (removed.recalled, removed.text) == (True, "")
    assert [event.payload for event in world.publisher.events] == [(message.id, OPERATOR, "harassment")]
    stored = (await world.msgs.history(2, cid, after_seq=0, before_seq=None, limit=1)).messages[0]
    assert (stored.recalled, stored.text) == (True, "")


@pytest.mark.parametrize("reason", ["", "   ", "x" * (MAX_REASON_LENGTH + 1)])
async def test_an_operator_removal_needs_a_reason(world: World, reason: str) -> None:
    cid = await group_with(world, 1)
    message = world.publisher.log[0]
    with pytest.raises(errors.TidingsError) as refused:
        await world.msgs.recall(cid, message.id, OPERATOR, by_operator=True, moderation_reason=reason)
    assert common_errors.is_invalid_argument(refused.value)
    assert field_of(refused.value) == "moderation_reason"
    assert world.publisher.events == []
    stored = (await world.msgs.history(1, cid, after_seq=0, before_seq=None, limit=1)).messages[0]
    assert not stored.recalled


async def test_a_sender_cannot_pass_a_recall_off_as_a_moderators_removal(world: World) -> None:
    cid = await group_with(world, 1)
    message = world.publisher.log[0]
    with pytest.raises(errors.TidingsError) as refused:
        await world.msgs.recall(cid, message.id, 1, by_operator=False, moderation_reason="moderated")
    assert field_of(refused.value) == "moderation_reason"
    assert world.publisher.events == []


async def test_an_operator_removal_in_an_unknown_or_deleted_conversation_is_not_found(world: World) -> None:
    cid = await group_with(world, 1)
    message = world.publisher.log[0]
    with pytest.raises(errors.TidingsError) as unknown:
        await world.msgs.recall(cid + 999, message.id, OPERATOR, by_operator=True, moderation_reason="spam")
    assert chat_errors.is_conversation_not_found(unknown.value)
    await world.chats.delete(OPERATOR, cid, "spam ring")
    with pytest.raises(errors.TidingsError) as deleted:
        await world.msgs.recall(cid, message.id, OPERATOR, by_operator=True, moderation_reason="spam")
    assert chat_errors.is_conversation_not_found(deleted.value)


# -- deleting a group -----------------------------------------------------------------------------------------------


async def test_a_deleted_group_has_no_members_and_is_served_to_no_one(world: World) -> None:
    cid = await group_with(world, 2)
    other = await group_with(world, 1)
    # Every member's gate, member list and view are cached before the deletion: it must not be served from there.
    for user in (1, 2, 3):
        await world.chats.get(user, cid)
        await world.msgs.history(user, cid, after_seq=0, before_seq=None, limit=5)
    await world.chats.remove_member(3, cid, 3)  # a former member too

    before = await world.chats.get(1, cid)
    answer = await world.chats.delete(OPERATOR, cid, "spam ring")

    assert answer.conversation == before.conversation  # the group as it was
    assert (answer.member_ids, answer.read_seq) == ((1, 2), 0)
    for user in (1, 2, 3):
        with pytest.raises(errors.TidingsError) as gone:
            await world.chats.get(user, cid)
        assert chat_errors.is_conversation_not_found(gone.value)
        with pytest.raises(errors.TidingsError) as history:
            await world.msgs.history(user, cid, after_seq=0, before_seq=None, limit=5)
        assert chat_errors.is_conversation_not_found(history.value)
        listed = await world.chats.list_page(user, 0, None)
        assert cid not in [view.conversation.id for view in listed.views]
        assert [state.conversation_id for state in await world.chats.states(user, [cid])] == []
    with pytest.raises(errors.TidingsError) as send:
        await world.msgs.send(cid, 1, "after", "anyone here?")
    assert chat_errors.is_conversation_not_found(send.value)
    with pytest.raises(errors.TidingsError) as add:
        await world.chats.add_members(1, cid, [5])
    assert chat_errors.is_conversation_not_found(add.value)
    # Other conversations are untouched.
    assert (await world.chats.get(2, other)).member_ids == (1, 2, 3)


async def test_only_groups_are_deleted(world: World) -> None:
    direct, _ = await world.chats.create_direct(1, 2)
    with pytest.raises(errors.TidingsError) as refused:
        await world.chats.delete(OPERATOR, direct.conversation.id, "spam")
    assert chat_errors.is_not_a_group(refused.value)
    assert (await world.chats.get(1, direct.conversation.id)).member_ids == (1, 2)


@pytest.mark.parametrize("reason", ["", "  \n", "x" * (MAX_REASON_LENGTH + 1)])
async def test_deleting_a_group_needs_a_reason(world: World, reason: str) -> None:
    cid = await group_with(world, 0)
    with pytest.raises(errors.TidingsError) as refused:
        await world.chats.delete(OPERATOR, cid, reason)
    assert field_of(refused.value) == "reason"
    assert (await world.chats.get(1, cid)).member_ids == (1, 2, 3)


async def test_deleting_an_unknown_group_or_one_twice_is_not_found(world: World) -> None:
    cid = await group_with(world, 0)
    with pytest.raises(errors.TidingsError) as unknown:
        await world.chats.delete(OPERATOR, cid + 999, "spam")
    assert chat_errors.is_conversation_not_found(unknown.value)
    await world.chats.delete(OPERATOR, cid, "spam")
    with pytest.raises(errors.TidingsError) as twice:
        await world.chats.delete(OPERATOR, cid, "spam")
    assert chat_errors.is_conversation_not_found(twice.value)
