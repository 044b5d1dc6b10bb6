"""Sending on fakes: seq order, dedup of retries (sequential, racing, across instances), failed produces."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from tests.unit.chat.fakes import World
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.service.chat.biz.model import MAX_TEXT_LENGTH
from tidings.service.chat.biz.ports import Reservation
from tidings.service.chat.message import Message


@pytest.fixture
def world() -> World:
    return World()


async def group(world: World, *members: int) -> int:
    view = await world.chats.create_group(members[0], "g", list(members[1:]))
    return view.conversation.id


async def test_seqs_start_at_one_and_increase_in_acknowledgement_order(world: World) -> None:
    cid = await group(world, 1, 2)
    sent = [await world.msgs.send(cid, 1 + n % 2, f"c{n}", f"text {n}") for n in range(5)]
    assert [s.message.seq for s in sent] == [1, 2, 3, 4, 5]
    assert not any(s.duplicate for s in sent)
    assert len({s.message.id for s in sent}) == 5
    assert [m.seq for m in world.publisher.log] == [1, 2, 3, 4, 5]


async def test_concurrent_sends_get_unique_increasing_seqs_and_the_log_follows_seq_order(world: World) -> None:
    conversations = [await group(world, 1, 2, 3) for _ in range(4)]
    sends = [world.msgs.send(cid, 1 + n % 3, f"{cid}-{n}", "x") for cid in conversations for n in range(40)]
    results = await asyncio.gather(*sends)
    by_conversation: dict[int, list[int]] = defaultdict(list)
    for message in world.publisher.log:
        by_conversation[message.conversation_id].append(message.seq)
    for cid in conversations:
        seqs = by_conversation[cid]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 40
    assert len({r.message.id for r in results}) == len(results) == 160


async def test_a_retry_answers_the_original_message(world: World) -> None:
    cid = await group(world, 1, 2)
    first = await world.msgs.send(cid, 1, "same", "hello")
    await world.msgs.send(cid, 2, "other", "between")
    retry = await world.msgs.send(cid, 1, "same", "hello again, changed text")
    assert retry.duplicate
    assert retry.message == first.message
    assert len(world.publisher.log) == 2


async def test_a_late_retry_after_its_reservation_was_pruned_answers_the_original_message(world: World) -> None:
    cid = await group(world, 1, 2)
    first = await world.msgs.send(cid, 1, "late", "hello")
    await world.persist()
    assert await world.dedup.prune(first.message.created_at_ms + 1, 100) == 1
    assert world.dedup.rows == {}
    retry = await world.msgs.send(cid, 1, "late", "hello")
    assert retry.duplicate
    assert retry.message == first.message
    assert len(world.publisher.log) == 1


async def test_client_message_ids_are_per_sender(world: World) -> None:
    cid = await group(world, 1, 2)
    mine = await world.msgs.send(cid, 1, "same", "a")
    theirs = await world.msgs.send(cid, 2, "same", "b")
    assert not theirs.duplicate
    assert theirs.message.id != mine.message.id


async def test_a_client_msg_id_reused_in_another_conversation_is_409_and_sends_nothing(world: World) -> None:
    first_cid = await group(world, 1, 2)
    second_cid = await group(world, 1, 3)
    await world.msgs.send(first_cid, 1, "m-1", "to the first")
    with pytest.raises(errors.TidingsError) as refused:
        await world.msgs.send(second_cid, 1, "m-1", "to the second")
    assert chat_errors.is_client_msg_id_reused(refused.value)
    assert refused.value.code == 409
    assert refused.value.metadata["conversation_id"] == str(first_cid)
    assert [m.conversation_id for m in world.publisher.log] == [first_cid]


async def test_racing_reuses_in_two_conversations_send_one_message_and_refuse_the_other(world: World) -> None:
    first_cid = await group(world, 1, 2)
    second_cid = await group(world, 1, 3)
    results = await asyncio.gather(
        world.msgs.send(first_cid, 1, "race", "a"), world.msgs.send(second_cid, 1, "race", "b"), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1
    assert chat_errors.is_client_msg_id_reused(refused[0])
    assert len(world.publisher.log) == 1


async def test_racing_retries_in_one_instance_answer_one_message(world: World) -> None:
    cid = await group(world, 1, 2)
    results = await asyncio.gather(*(world.msgs.send(cid, 1, "race", "hi") for _ in range(10)))
    assert len({(r.message.id, r.message.seq) for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len(world.publisher.log) == 1


async def test_racing_retries_across_instances_answer_one_message(world: World) -> None:
    cid = await group(world, 1, 2)
    instances = [world.new_sender() for _ in range(4)]
    results = await asyncio.gather(*(sender.send(cid, 1, "race", "hi") for sender in instances * 3))
    assert len({(r.message.id, r.message.seq) for r in results}) == 1
    assert len(world.publisher.log) == 1


async def test_a_retry_waits_for_the_original_still_being_produced_elsewhere(world: World) -> None:
    cid = await group(world, 1, 2)
    world.publisher.hold = asyncio.Event()
    original = asyncio.create_task(world.new_sender().send(cid, 1, "slow", "hi"))
    while not world.dedup.rows:  # noqa: ASYNC110 - the reservation is the moment the race starts
        await asyncio.sleep(0)
    retry = asyncio.create_task(world.msgs.send(cid, 1, "slow", "hi"))
    await asyncio.sleep(0.01)
    assert not retry.done()
    world.publisher.hold.set()
    first, second = await original, await retry
    assert second.duplicate
    assert second.message == first.message
    assert len(world.publisher.log) == 1


async def test_a_retry_queued_beside_its_abandoned_original_commits_one_message(world: World) -> None:
    # A caller gives up (its deadline) while its send still waits in the queue behind a slow produce, and its retry
    # joins the same queue: one message of the key, and the retry is answered with it.
    cid = await group(world, 1, 2)
    world.publisher.hold = asyncio.Event()
    ahead = asyncio.create_task(world.msgs.send(cid, 2, "ahead", "being produced"))
    while not world.dedup.rows:  # noqa: ASYNC110 - the batch ahead is reserved; its produce is held
        await asyncio.sleep(0)
    abandoned = asyncio.create_task(world.msgs.send(cid, 1, "again", "hi"))
    await asyncio.sleep(0.01)
    abandoned.cancel()
    retry = asyncio.create_task(world.msgs.send(cid, 1, "again", "hi"))
    await asyncio.sleep(0.01)
    world.publisher.hold.set()
    await ahead
    answered = await retry
    assert [m.client_msg_id for m in world.publisher.log] == ["ahead", "again"]
    assert answered.message == world.publisher.log[1] == world.dedup.rows[(1, "again")].message


async def test_a_failed_produce_fails_the_send_and_the_retry_commits_the_same_message(world: World) -> None:
    cid = await group(world, 1, 2)
    world.publisher.failures = 1
    with pytest.raises(errors.TidingsError) as failed:
        await world.msgs.send(cid, 1, "flaky", "hi")
    assert common_errors.is_unavailable(failed.value)
    assert world.publisher.log == []
    [reserved] = world.dedup.rows.values()
    retry = await world.msgs.send(cid, 1, "flaky", "hi")
    assert retry.message == reserved.message
    assert world.publisher.log == [reserved.message]
    assert world.dedup.rows[reserved.key].sent
    after = await world.msgs.send(cid, 1, "next", "hi")
    assert after.message.seq > retry.message.seq


async def test_a_send_whose_owner_died_is_taken_over_after_its_lease(world: World) -> None:
    cid = await group(world, 1, 2)
    # An instance reserved and maybe produced, then died: the reservation is unsent with a live lease.
    message = Message(world.ids.next_id(), cid, 7, 1, "orphan", "hi", world.clock.now)
    orphan = Reservation(message, sent=False, lease_until_ms=world.clock.now + 1_000)
    world.dedup.rows[orphan.key] = orphan
    retry = asyncio.create_task(world.msgs.send(cid, 1, orphan.message.client_msg_id, "hi"))
    await asyncio.sleep(0.01)
    assert not retry.done()  # the lease still runs
    world.clock.advance(1_001)
    result = await retry
    assert result.duplicate
    assert result.message == orphan.message
    assert world.publisher.log == [orphan.message]


async def test_an_unavailable_seq_store_fails_the_send_clearly(world: World) -> None:
    cid = await group(world, 1, 2)
    world.seqs.fail = True
    with pytest.raises(errors.TidingsError) as failed:
        await world.msgs.send(cid, 1, "x", "hi")
    assert common_errors.is_unavailable(failed.value)
    assert "retry" in failed.value.message
    world.seqs.fail = False
    assert (await world.msgs.send(cid, 1, "x", "hi")).message.seq >= 1


async def test_only_members_send(world: World) -> None:
    cid = await group(world, 1, 2)
    with pytest.raises(errors.TidingsError) as stranger:
        await world.msgs.send(cid, 3, "x", "hi")
    assert chat_errors.is_conversation_not_found(stranger.value)
    with pytest.raises(errors.TidingsError) as missing:
        await world.msgs.send(424242, 1, "x", "hi")
    assert chat_errors.is_conversation_not_found(missing.value)


async def test_a_refused_send_is_answered_alone_and_its_batch_goes_on(world: World) -> None:
    cid = await group(world, 1, 2)
    direct, _ = await world.chats.create_direct(3, 4)
    world.directory.blocks.add((4, 3))
    world.clock.advance(10_000)  # past the block cache's TTL
    sends = [
        world.msgs.send(cid, 1, "a", "member"),
        world.msgs.send(cid, 9, "b", "stranger"),
        world.msgs.send(direct.conversation.id, 3, "c", "blocked"),
        world.msgs.send(424242, 1, "d", "nowhere"),
        world.msgs.send(cid, 2, "e", "member too"),
    ]
    # One batch: every send is queued before the pipeline takes the first.
    outcomes = await asyncio.gather(*sends, return_exceptions=True)
    assert [o.message.seq for o in outcomes if not isinstance(o, BaseException)] == [1, 2]
    refused = [o for o in outcomes if isinstance(o, errors.TidingsError)]
    assert [chat_errors.is_conversation_not_found(o) for o in refused] == [True, False, True]
    assert chat_errors.is_user_blocked(refused[1])
    assert [m.text for m in world.publisher.log] == ["member", "member too"]


async def test_blocked_users_cannot_write_to_each_other(world: World) -> None:
    direct, _ = await world.chats.create_direct(1, 2)
    cid = direct.conversation.id
    await world.msgs.send(cid, 1, "before", "hi")
    world.directory.blocks.add((2, 1))
    world.clock.advance(10_000)  # past the block cache's TTL
    for sender in (1, 2):
        with pytest.raises(errors.TidingsError) as blocked:
            await world.msgs.send(cid, sender, f"after-{sender}", "hi")
        assert chat_errors.is_user_blocked(blocked.value)


async def test_block_checks_are_cached_briefly(world: World) -> None:
    direct, _ = await world.chats.create_direct(1, 2)
    checks = world.directory.block_checks
    for n in range(5):
        await world.msgs.send(direct.conversation.id, 1, f"m{n}", "hi")
    assert world.directory.block_checks == checks  # the creation's answer is still fresh


@pytest.mark.parametrize(
    ("text", "client_msg_id", "reason", "field"),
    [
        ("x" * (MAX_TEXT_LENGTH + 1), "ok", "MESSAGE_TOO_LONG", "text"),
        ("", "ok", "INVALID_ARGUMENT", "text"),
        ("hi", "has space", "INVALID_ARGUMENT", "client_msg_id"),
        ("hi", "x" * 65, "INVALID_ARGUMENT", "client_msg_id"),
    ],
)
async def test_bad_input_is_refused_with_its_field(
    world: World, text: str, client_msg_id: str, reason: str, field: str
) -> None:
    cid = await group(world, 1, 2)
    with pytest.raises(errors.TidingsError) as failed:
        await world.msgs.send(cid, 1, client_msg_id, text)
    assert failed.value.reason == reason
    assert failed.value.metadata["field"] == field


async def test_text_of_exactly_the_limit_in_code_points_is_accepted(world: World) -> None:
    cid = await group(world, 1, 2)
    text = "\U0001f600" * MAX_TEXT_LENGTH  # 4,000 code points, 16,000 UTF-8 bytes
    assert (await world.msgs.send(cid, 1, "emoji", text)).message.text == text
