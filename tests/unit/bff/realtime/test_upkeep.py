"""The hub's upkeep with a fake clock: idle connections, expired and revoked tokens, route heartbeats, crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.bff.realtime.harness import Cluster, cluster_of, events
from tidings.bff.biz.model import Presence
from tidings.bff.biz.realtime.events import PresenceChanged
from tidings.bff.biz.realtime.session import CloseReason
from tidings.realtime.routes import MemoryRouteTable


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async for cluster in cluster_of():
        yield cluster


async def test_a_connection_that_sends_nothing_within_the_idle_timeout_is_closed(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    silent, pinging = await cluster.connect(hub, token), await cluster.connect(hub, token)
    for _ in range(4):
        cluster.clock.advance(s=30)  # the documented ping interval
        pinging.seen(cluster.clock.monotonic())
        await hub.tick()
    assert silent.reason is CloseReason.IDLE
    assert pinging.reason is None
    assert cluster.closes("idle") == 1


async def test_a_connection_is_closed_when_its_token_expires(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    cluster.accounts.expiry[token] = cluster.clock.now + 20_000
    session = await cluster.connect(hub, token)
    cluster.clock.advance(s=10)
    await hub.tick()
    assert session.reason is None
    cluster.clock.advance(s=10)
    await hub.tick()
    assert session.reason is CloseReason.UNAUTHENTICATED


async def test_a_revoked_token_closes_the_connection_at_the_next_check(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    session = await cluster.connect(hub, token)
    cluster.accounts.revoked.add(token)
    cluster.clock.advance(s=cluster.conf.reverify_interval_s)
    session.seen(cluster.clock.monotonic())
    await hub.tick()
    assert session.reason is CloseReason.UNAUTHENTICATED
    assert cluster.closes("unauthenticated") == 1


async def test_an_unreachable_account_service_does_not_close_connections(cluster: Cluster) -> None:
    hub = cluster.hub()
    _, token = cluster.user("alice")
    session = await cluster.connect(hub, token)
    cluster.accounts.unavailable = True
    cluster.clock.advance(s=cluster.conf.reverify_interval_s)
    session.seen(cluster.clock.monotonic())
    await hub.tick()
    assert session.reason is None
    assert cluster.accounts.identified.count(token) == 2  # at connect, and the check that failed


async def test_heartbeats_keep_routes_alive_past_their_ttl(cluster: Cluster) -> None:
    hub = cluster.hub("a:1")
    alice, token = cluster.user("alice")
    session = await cluster.connect(hub, token)
    for _ in range(10):  # five minutes, more than three TTLs
        cluster.clock.advance(s=30)
        session.seen(cluster.clock.monotonic())
        await hub.tick()
    assert await cluster.routes.routes_for([alice]) == {alice: {session.id: "a:1"}}


async def test_a_crashed_instance_s_users_go_offline_by_expiry_and_their_peers_hear_it(cluster: Cluster) -> None:
    crashed, survivor = cluster.hub("a:1"), cluster.hub("b:1")
    alice, alice_token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    await cluster.chats.create_direct(alice, bob)
    watcher = await cluster.connect(survivor, bob_token)
    await cluster.connect(crashed, alice_token)
    await survivor.drain()
    await crashed.drain()
    assert await events(watcher) == [PresenceChanged(alice, Presence.ONLINE)]
    cluster.relay.hubs.pop("a:1")  # the process is gone: no heartbeat, no disconnect
    for _ in range(4):
        cluster.clock.advance(s=30)
        watcher.seen(cluster.clock.monotonic())
        await survivor.tick()
        await survivor.drain()
    assert await cluster.routes.online([alice, bob]) == {bob}
    assert await events(watcher) == [PresenceChanged(alice, Presence.OFFLINE)]


class ForgetfulRoutes(MemoryRouteTable):
    """The route table of a Redis that was flushed, or restarted empty, when ``forget`` is called."""

    def forget(self) -> None:
        self._users.clear()
        self._beacons.clear()


async def test_connections_are_closed_when_the_route_table_lost_their_routes() -> None:
    async for cluster in cluster_of():
        cluster.routes = ForgetfulRoutes(ttl_s=cluster.conf.route_ttl_s, clock=cluster.clock)
        hub = cluster.hub()
        _, token = cluster.user("alice")
        session = await cluster.connect(hub, token)
        await hub.tick()
        await hub.tick()
        assert session.reason is None  # the first beacon found none (the instance just started), and that is fine
        cluster.routes.forget()
        await hub.tick()
        # Whatever was pushed meanwhile found no route: the client must connect again and catch up from history.
        assert session.reason is CloseReason.UNROUTABLE
        late = await cluster.connect(hub, token)
        await hub.tick()
        assert late.reason is None
