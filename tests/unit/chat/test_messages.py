"""History paging, read marks and recall on fakes."""

from __future__ import annotations

import pytest

from tests.unit.chat.fakes import World
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.service.chat.biz.model import HISTORY_MAX_LIMIT, RECALL_WINDOW_MS


@pytest.fixture
def world() -> World:
    return World()


async def conversation_with(world: World, count: int) -> int:
    view = await world.chats.create_group(1, "g", [2, 3])
    cid = view.conversation.id
    for n in range(count):
        await world.msgs.send(cid, 1 + n % 2, f"m{n}", f"text {n + 1}")
    await world.persist()
    return cid


def seqs(page: object) -> list[int]:
    return [message.seq for message in page.messages]  # type: ignore[attr-defined]


async def test_history_pages_forward_with_has_more(world: World) -> None:
    cid = await conversation_with(world, 7)
    first = await world.msgs.history(1, cid, after_seq=0, before_seq=None, limit=3)
    assert (seqs(first), first.has_more) == ([1, 2, 3], True)
    second = await world.msgs.history(1, cid, after_seq=3, before_seq=None, limit=3)
    assert (seqs(second), second.has_more) == ([4, 5, 6], True)
    last = await world.msgs.history(1, cid, after_seq=6, before_seq=None, limit=3)
    assert (seqs(last), last.has_more) == ([7], False)
    exact = await world.msgs.history(1, cid, after_seq=4, before_seq=None, limit=3)
    assert (seqs(exact), exact.has_more) == ([5, 6, 7], False)


async def test_history_pages_backward_ascending_with_has_more(world: World) -> None:
    cid = await conversation_with(world, 7)
    newest = await world.msgs.history(1, cid, after_seq=None, before_seq=None, limit=3)
    assert (seqs(newest), newest.has_more) == ([5, 6, 7], True)
    older = await world.msgs.history(1, cid, after_seq=None, before_seq=5, limit=3)
    assert (seqs(older), older.has_more) == ([2, 3, 4], True)
    oldest = await world.msgs.history(1, cid, after_seq=None, before_seq=2, limit=3)
    assert (seqs(oldest), oldest.has_more) == ([1], False)
    assert [m.text for m in newest.messages] == ["text 5", "text 6", "text 7"]


async def test_history_limit_defaults_to_50_and_is_capped_at_200(world: World) -> None:
    cid = await conversation_with(world, HISTORY_MAX_LIMIT + 20)
    default = await world.msgs.history(1, cid, after_seq=0, before_seq=None, limit=0)
    assert len(default.messages) == 50
    capped = await world.msgs.history(1, cid, after_seq=0, before_seq=None, limit=10_000)
    assert (len(capped.messages), capped.has_more) == (HISTORY_MAX_LIMIT, True)
    with pytest.raises(errors.TidingsError) as negative:
        await world.msgs.history(1, cid, after_seq=0, before_seq=None, limit=-1)
    assert negative.value.metadata["field"] == "limit"


async def test_history_is_for_members_only(world: World) -> None:
    cid = await conversation_with(world, 2)
    with pytest.raises(errors.TidingsError) as stranger:
        await world.msgs.history(9, cid, after_seq=0, before_seq=None, limit=10)
    assert chat_errors.is_conversation_not_found(stranger.value)
    await world.chats.remove_member(3, cid, 3)
    with pytest.raises(errors.TidingsError) as former:
        await world.msgs.history(3, cid, after_seq=0, before_seq=None, limit=10)
    assert chat_errors.is_not_a_member(former.value)


async def test_read_marks_move_forward_only_clamped_to_max_seq(world: World) -> None:
    cid = await conversation_with(world, 5)
    assert await world.msgs.mark_read(2, cid, 3) == 3
    view = await world.chats.get(2, cid)
    assert (view.read_seq, view.unread_count) == (3, 2)  # seen at once by the reader
    assert await world.msgs.mark_read(2, cid, 1) == 3  # never back
    assert await world.msgs.mark_read(2, cid, 99) == 5  # clamped to max_seq
    assert (await world.chats.get(2, cid)).unread_count == 0
    # A message sent but not yet persisted is not in max_seq: the mark cannot pass it.
    await world.msgs.send(cid, 1, "late", "x")
    assert await world.msgs.mark_read(2, cid, 6) == 5
    await world.persist()
    assert (await world.chats.get(2, cid)).unread_count == 1
    # Other devices hear of each mark (a repeat of the current mark is announced again: retries must be).
    announced = [event.payload for event in world.publisher.events if event.kind == "read"]
    assert list(dict.fromkeys(announced)) == [(cid, 2, 3), (cid, 2, 5)]


async def test_unread_is_max_seq_minus_read_seq_per_member(world: World) -> None:
    cid = await conversation_with(world, 4)
    await world.msgs.mark_read(3, cid, 1)
    views = {user: await world.chats.get(user, cid) for user in (1, 2, 3)}
    assert {user: view.unread_count for user, view in views.items()} == {1: 4, 2: 4, 3: 3}


async def test_a_failed_read_announcement_is_reported_and_announced_on_retry(world: World) -> None:
    cid = await conversation_with(world, 2)
    world.publisher.failures = 1
    with pytest.raises(errors.TidingsError) as failed:
        await world.msgs.mark_read(2, cid, 2)
    assert common_errors.is_unavailable(failed.value)
    assert await world.msgs.mark_read(2, cid, 2) == 2
    assert [event.payload for event in world.publisher.events] == [(cid, 2, 2)]


async def test_the_sender_recalls_within_the_window(world: World) -> None:
    cid = await conversation_with(world, 2)
    message = (await world.msgs.history(1, cid, after_seq=0, before_seq=None, limit=1)).messages[0]
    world.clock.advance(RECALL_WINDOW_MS)
    recalled = await world.msgs.recall(cid, message.id, message.sender_id, by_operator=False)
    assert recalled.recalled
    assert recalled.text == ""
    stored = (await world.msgs.history(2, cid, after_seq=0, before_seq=None, limit=1)).messages[0]
    assert (stored.recalled, stored.text) == (True, "")
    assert world.history_cache.forgotten == [cid]
    assert [event.payload for event in world.publisher.events] == [(message.id, message.sender_id, "")]


async def test_recall_after_the_window_is_refused(world: World) -> None:
    cid = await conversation_with(world, 1)
    message = world.publisher.log[0]
    world.clock.advance(RECALL_WINDOW_MS + 1)
    with pytest.raises(errors.TidingsError) as late:
        await world.msgs.recall(cid, message.id, message.sender_id, by_operator=False)
    assert chat_errors.is_recall_window_passed(late.value)
    assert late.value.metadata["window_s"] == "120"


async def test_only_the_sender_recalls_unless_an_operator_does(world: World) -> None:
    cid = await conversation_with(world, 1)
    message = world.publisher.log[0]
    with pytest.raises(errors.TidingsError) as other:
        await world.msgs.recall(cid, message.id, 2, by_operator=False)
    assert chat_errors.is_not_message_sender(other.value)
    world.clock.advance(RECALL_WINDOW_MS * 10)
    recalled = await world.msgs.recall(cid, message.id, 777, by_operator=True, moderation_reason="spam")
    assert recalled.recalled


async def test_recalling_an_unknown_message_or_twice(world: World) -> None:
    cid = await conversation_with(world, 1)
    with pytest.raises(errors.TidingsError) as unknown:
        await world.msgs.recall(cid, 123, 1, by_operator=False)
    assert chat_errors.is_message_not_found(unknown.value)
    message = world.publisher.log[0]
    await world.msgs.recall(cid, message.id, 1, by_operator=False)
    world.clock.advance(RECALL_WINDOW_MS * 2)
    again = await world.msgs.recall(cid, message.id, 1, by_operator=False)  # a retry, even after the window
    assert again.recalled
