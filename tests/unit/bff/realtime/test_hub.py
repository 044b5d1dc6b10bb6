"""The hub with fakes: sessions, their routes, bounded outboxes, delivery across instances, and stopping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.bff.fakes import NOW
from tests.unit.bff.realtime.harness import CONF, Cluster, cluster_of, events, waiting
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.realtime.events import Envelope, MessageNew, Ready, SessionEnded, Typing
from tidings.bff.biz.realtime.session import CloseReason
from tidings.pkg import errors
from tidings.service.chat.message import Message

MESSAGE = Message(7, 3, 1, 1, "c1", "hello", NOW, False)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async for cluster in cluster_of():
        yield cluster


async def test_ready_is_the_first_frame_once_the_route_is_written(cluster: Cluster) -> None:
    hub = cluster.hub("a:1")
    alice, token = cluster.user("alice")
    session = await cluster.connect(hub, token)
    assert hub.deliver([session.id], Envelope(MessageNew(MESSAGE))) == []
    frames = await waiting(session)
    assert frames[0] == Ready(session.id)
    assert isinstance(frames[1], Envelope)
    assert await cluster.routes.routes_for([alice]) == {alice: {session.id: "a:1"}}
    assert cluster.connections() == 1


async def test_every_device_of_a_user_gets_the_event_wherever_it_is_connected(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    alice, token = cluster.user("alice")
    phone, laptop, tablet = (
        await cluster.connect(a, token),
        await cluster.connect(a, token),
        await cluster.connect(b, token),
    )
    assert len({phone.id, laptop.id, tablet.id}) == 3
    await a.deliver_to_users(MessageNew(MESSAGE), [alice])
    for session in (phone, laptop, tablet):
        assert await events(session) == [MessageNew(MESSAGE)]
    # One Deliver call to the other instance for its session; this instance's own sessions are served directly.
    assert [(instance, [ids for ids, _ in batch]) for instance, batch in cluster.relay.calls] == [
        ("b:1", [[tablet.id]])
    ]


async def test_a_full_outbox_closes_the_slow_session_counts_it_and_spares_the_others(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    slow, fast = await cluster.connect(hub, token), await cluster.connect(hub, token)
    envelope = Envelope(MessageNew(MESSAGE))
    gone: list[str] = []
    for _ in range(cluster.conf.queue_size + 5):
        gone += hub.deliver([slow.id, fast.id], envelope)
        await waiting(fast)  # this one keeps up
    assert slow.reason is CloseReason.SLOW_CONSUMER
    assert slow.pending == 0  # what was queued is dropped, not kept in memory
    assert await slow.next() is None
    assert fast.reason is None
    assert set(gone) == {slow.id}
    assert hub.session(slow.id) is None
    assert cluster.closes("slow_consumer") == 1
    assert cluster.connections() == 1


async def test_deliver_names_the_sessions_not_connected_here(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    live, closed = await cluster.connect(hub, token), await cluster.connect(hub, token)
    hub.disconnect(closed)
    gone = hub.deliver([live.id, closed.id, "never-here"], Envelope(MessageNew(MESSAGE)))
    assert gone == [closed.id, "never-here"]
    assert await events(live) == [MessageNew(MESSAGE)]


@pytest.mark.parametrize(
    ("reason", "closed_as"), [("USER_BANNED", CloseReason.BANNED), ("TOKEN_REVOKED", CloseReason.REVOKED)]
)
async def test_session_ended_is_the_last_frame_then_the_session_closes(
    cluster: Cluster, reason: str, closed_as: CloseReason
) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    session, other = await cluster.connect(hub, token), await cluster.connect(hub, token)
    await waiting(session)
    hub.deliver([session.id], Envelope(MessageNew(MESSAGE)))
    ended = Envelope(SessionEnded(reason, "Your account was suspended by an operator."))
    assert hub.deliver([session.id], ended) == []
    # Nothing after it is queued, and what was waiting is dropped: the client is signed out.
    assert hub.deliver([session.id], Envelope(MessageNew(MESSAGE))) == [session.id]
    assert await session.next() is ended
    assert session.reason is None  # still open until the writer has written it
    assert await session.next() is None
    assert session.reason is closed_as
    assert await session.wait_closed() is closed_as
    assert other.reason is None
    await hub.drain()
    assert list((await cluster.routes.routes_for([alice]))[alice]) == [other.id]
    assert cluster.closes(closed_as.value) == 1


async def test_a_session_that_cannot_write_its_last_frame_is_closed_within_the_io_bound() -> None:
    async for cluster in cluster_of(CONF.model_copy(update={"io_timeout_s": 0.05})):
        hub = cluster.hub()
        _, token = cluster.user("alice")
        stuck = await cluster.connect(hub, token)
        hub.deliver([stuck.id], Envelope(SessionEnded("USER_BANNED", "suspended")))
        assert await stuck.wait_closed() is CloseReason.BANNED
        assert hub.deliver([stuck.id], Envelope(SessionEnded("USER_BANNED", "suspended"))) == [stuck.id]


async def test_disconnect_removes_the_route_and_counts_the_reason(cluster: Cluster) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    session = await cluster.connect(hub, token)
    hub.disconnect(session)
    hub.disconnect(session)  # idempotent
    await hub.drain()
    assert await cluster.routes.routes_for([alice]) == {}
    assert cluster.closes("client_closed") == 1
    assert cluster.connections() == 0


async def test_a_connection_whose_route_cannot_be_written_is_refused(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")

    async def broken(_: object) -> list[int]:
        raise ConnectionError("redis is down")

    cluster.routes.touch = broken  # type: ignore[method-assign]
    with pytest.raises(errors.TidingsError) as refused:
        await cluster.connect(hub, token)
    assert common_errors.is_unavailable(refused.value)
    assert hub.sessions() == []
    assert cluster.connections() == 0
    assert cluster.closes("unroutable") == 1


async def test_routes_to_sessions_gone_from_another_instance_are_pruned(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    bob, token = cluster.user("bob")
    await cluster.routes.touch([(bob, "stale-on-b", "b:1"), (bob, "stale-on-a", "a:1")])
    live = await cluster.connect(b, token)
    await a.deliver_to_users(Typing(3, 1), [bob])
    assert await events(live) == [Typing(3, 1)]
    assert await cluster.routes.routes_for([bob]) == {bob: {live.id: "b:1"}}


async def test_an_instance_that_is_down_costs_its_sessions_the_event_and_is_counted(cluster: Cluster) -> None:
    a, b, c = cluster.hub("a:1"), cluster.hub("b:1"), cluster.hub("c:1")
    bob, token = cluster.user("bob")
    on_b, on_c = await cluster.connect(b, token), await cluster.connect(c, token)
    cluster.relay.down.add("b:1")
    await a.deliver_to_users(Typing(3, 1), [bob])
    assert await events(on_c) == [Typing(3, 1)]
    assert await events(on_b) == []
    assert cluster.registry.get_sample_value("tidings_bff_relay_failures_total") == 1
    # Its route stays: the instance may be back in a moment, and expiry removes it if not.
    assert on_b.id in (await cluster.routes.routes_for([bob]))[bob]


async def test_stop_closes_every_session_as_going_away_and_removes_their_routes(cluster: Cluster) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    sessions = [await cluster.connect(hub, token), await cluster.connect(hub, bob_token)]
    await hub.start()
    await hub.stop()
    assert [session.reason for session in sessions] == [CloseReason.GOING_AWAY] * 2
    assert await cluster.routes.routes_for([alice, bob]) == {}
    assert cluster.closes("going_away") == 2
    assert cluster.relay.closed
