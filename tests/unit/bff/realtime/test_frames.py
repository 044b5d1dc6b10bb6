"""Client frames on a live connection: typing fan-out and its limits, sends and read marks, errors as frames."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.bff.realtime.harness import Cluster, cluster_of, events, waiting
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.realtime.events import Failure, Marked, MarkRead, Ping, Pong, SendText, Sent, StartTyping, Typing
from tidings.bff.biz.usecase import Members
from tidings.bff.service.connection import answer, refuse
from tidings.pkg import errors


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async for cluster in cluster_of():
        yield cluster


async def test_typing_reaches_the_other_members_devices_but_not_the_typer_or_outsiders(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    alice, alice_token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    carol, carol_token = cluster.user("carol")
    group = await cluster.chats.create_group(alice, "team", [bob])
    typer, alice_laptop = await cluster.connect(a, alice_token), await cluster.connect(b, alice_token)
    bob_phone, bob_laptop = await cluster.connect(a, bob_token), await cluster.connect(b, bob_token)
    outsider = await cluster.connect(a, carol_token)
    for hub in (a, b):
        await hub.drain()
    for session in (typer, alice_laptop, bob_phone, bob_laptop, outsider):
        await waiting(session)

    assert await cluster.frames(a).answer(typer, StartTyping(group.id)) is None
    assert await events(bob_phone) == [Typing(group.id, alice)]
    assert await events(bob_laptop) == [Typing(group.id, alice)]
    assert await events(typer) == []
    assert await events(alice_laptop) == []
    assert await events(outsider) == []
    assert carol not in group.member_ids


async def test_typing_in_a_conversation_the_user_is_not_in_is_refused(cluster: Cluster) -> None:
    hub = cluster.hub()
    alice, _ = cluster.user("alice")
    bob, _ = cluster.user("bob")
    _, carol_token = cluster.user("carol")
    direct, _ = await cluster.chats.create_direct(alice, bob)
    outsider = await cluster.connect(hub, carol_token)
    with pytest.raises(errors.TidingsError) as refused:
        await cluster.frames(hub).answer(outsider, StartTyping(direct.id))
    assert chat_errors.is_conversation_not_found(refused.value)


async def test_typing_is_rate_limited_per_user_however_many_connections_they_open(cluster: Cluster) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    bob, _ = cluster.user("bob")
    direct, _ = await cluster.chats.create_direct(alice, bob)
    sessions = [await cluster.connect(hub, token) for _ in range(cluster.conf.typing_burst + 1)]
    session = sessions[0]
    frames = cluster.frames(hub)
    for other in sessions[1:]:  # one frame on each of the other connections uses up the user's burst
        await frames.answer(other, StartTyping(direct.id))
    with pytest.raises(errors.TidingsError) as limited:
        await frames.answer(session, StartTyping(direct.id))
    assert limited.value.code == 429
    assert "retry_after_s" in limited.value.metadata
    cluster.clock.advance(s=1 / cluster.conf.typing_rate_per_s)
    await frames.answer(session, StartTyping(direct.id))


async def test_send_and_read_frames_answer_like_the_rest_api(cluster: Cluster) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    bob, _ = cluster.user("bob")
    direct, _ = await cluster.chats.create_direct(alice, bob)
    session = await cluster.connect(hub, token)
    frames = cluster.frames(hub)
    first = await frames.answer(session, SendText(direct.id, "c-1", "hi", ref=1))
    again = await frames.answer(session, SendText(direct.id, "c-1", "hi", ref=2))
    assert isinstance(first, Sent)
    assert isinstance(again, Sent)
    assert (first.ref, first.duplicate, again.ref, again.duplicate) == (1, False, 2, True)
    assert first.message == again.message
    assert await frames.answer(session, MarkRead(direct.id, 5, ref="r")) == Marked("r", direct.id, 1)
    assert await frames.answer(session, Ping(ref=9)) == Pong(9)


async def test_a_failing_frame_is_answered_with_an_error_frame_and_the_connection_stays(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    session = await cluster.connect(hub, token)
    await waiting(session)
    frames = cluster.frames(hub)
    await answer(frames, session, SendText(424242, "c-1", "hi", ref=3), transport="ws", timeout_s=5)
    refuse(session, 4, common_errors.invalid_argument("bad", field="type"), transport="ws")
    await answer(frames, session, Ping(ref=5), transport="ws", timeout_s=5)
    failure, refusal, pong = await waiting(session)
    assert isinstance(failure, Failure)
    assert (failure.ref, failure.error.reason) == (3, "CONVERSATION_NOT_FOUND")
    assert isinstance(refusal, Failure)
    assert (refusal.ref, refusal.error.code) == (4, 400)
    assert pong == Pong(5)
    assert session.reason is None


async def test_a_removed_members_typing_stops_at_once_on_every_instance(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    alice, alice_token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    group = await cluster.chats.create_group(alice, "team", [bob])
    watcher, typer = await cluster.connect(a, alice_token), await cluster.connect(b, bob_token)
    for hub in (a, b):
        await hub.drain()
    await waiting(watcher)
    await cluster.frames(b).answer(typer, StartTyping(group.id))
    assert await events(watcher) == [Typing(group.id, bob)]

    await Members(cluster.chats, cluster.audiences).remove(alice, group.id, bob)  # through instance a
    with pytest.raises(errors.TidingsError):
        await cluster.frames(b).answer(typer, StartTyping(group.id))
    assert await events(watcher) == []


@pytest.mark.parametrize(
    "frame",
    [SendText(0, "c-after-revoke", "still here?", ref=1), MarkRead(0, 1, ref=2), StartTyping(0, ref=3)],
    ids=["send", "read", "typing"],
)
async def test_a_revoked_token_stops_write_frames_at_once_and_closes_the_connection(
    cluster: Cluster, frame: SendText | MarkRead | StartTyping
) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    direct, _ = await cluster.chats.create_direct(alice, bob)
    session = await cluster.connect(hub, token)
    peer = await cluster.connect(hub, bob_token)
    await hub.drain()
    await waiting(peer)
    frame = _in(frame, direct.id)
    cluster.accounts.revoked.add(token)  # log out everywhere, or a ban: long before the periodic re-check

    with pytest.raises(errors.TidingsError) as refused:
        await cluster.frames(hub).answer(session, frame)
    assert refused.value.code == 401
    assert session.closed
    assert str(session.reason) == "unauthenticated"
    assert cluster.chats.messages.get(direct.id, []) == []
    assert await events(peer) == []
    # Pings ask nothing of account: a connection that only listens costs no token check per frame.
    checks = len(cluster.accounts.identified)
    assert await cluster.frames(hub).answer(peer, Ping(ref=4)) == Pong(4)
    assert len(cluster.accounts.identified) == checks


def _in(frame: SendText | MarkRead | StartTyping, conversation_id: int) -> SendText | MarkRead | StartTyping:
    match frame:
        case SendText(_, client_msg_id, text, ref):
            return SendText(conversation_id, client_msg_id, text, ref)
        case MarkRead(_, seq, ref):
            return MarkRead(conversation_id, seq, ref)
        case StartTyping(_, ref):
            return StartTyping(conversation_id, ref)
