"""Presence: a user is online while one device is connected; the people who share a conversation hear changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.bff.realtime.harness import CONF, Cluster, cluster_of, events
from tidings.bff.biz.model import Presence
from tidings.bff.biz.realtime.events import PresenceChanged
from tidings.bff.biz.usecase import Members
from tidings.bff.data.presence import RoutePresenceRepo


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async for cluster in cluster_of():
        yield cluster


async def test_the_first_device_brings_a_user_online_and_the_last_one_takes_them_offline(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    alice, alice_token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    carol, carol_token = cluster.user("carol")
    stranger, stranger_token = cluster.user("stranger")
    await cluster.chats.create_direct(alice, bob)
    await cluster.chats.create_group(carol, "team", [alice])
    watchers = {
        bob: await cluster.connect(a, bob_token),
        carol: await cluster.connect(b, carol_token),
        stranger: await cluster.connect(b, stranger_token),
    }
    for hub in (a, b):
        await hub.drain()
    for session in watchers.values():
        await events(session)  # what they heard about each other

    phone = await cluster.connect(a, alice_token)
    laptop = await cluster.connect(b, alice_token)
    for hub in (a, b):
        await hub.drain()
    online = [PresenceChanged(alice, Presence.ONLINE)]
    assert await events(watchers[bob]) == online  # once, though two devices connected
    assert await events(watchers[carol]) == online
    assert await events(watchers[stranger]) == []
    assert await events(phone) == []  # never to the user themself

    a.disconnect(phone)
    await a.drain()
    assert await events(watchers[bob]) == []  # the laptop is still connected
    b.disconnect(laptop)
    await b.drain()
    offline = [PresenceChanged(alice, Presence.OFFLINE)]
    assert await events(watchers[bob]) == offline
    assert await events(watchers[carol]) == offline
    assert await events(watchers[stranger]) == []


async def test_presence_reaches_at_most_the_configured_number_of_peers() -> None:
    cluster = Cluster(CONF.model_copy(update={"presence_max_peers": 2}))
    hub = cluster.hub()
    alice, alice_token = cluster.user("alice")
    peers = [cluster.user(f"peer{n}") for n in range(4)]
    await cluster.chats.create_group(alice, "big", [peer for peer, _ in peers])
    sessions = [await cluster.connect(hub, token) for _, token in peers]
    await hub.drain()
    for session in sessions:
        await events(session)
    await cluster.connect(hub, alice_token)
    await hub.drain()
    heard = [session for session in sessions if PresenceChanged(alice, Presence.ONLINE) in await events(session)]
    assert len(heard) == 2
    await cluster.close()


async def test_presence_is_pushed_in_direct_chats_and_small_groups_only_and_sync_tells_the_rest() -> None:
    cluster = Cluster(CONF.model_copy(update={"presence_push_max_members": 3}))
    hub = cluster.hub()
    alice, alice_token = cluster.user("alice")
    friend, friend_token = cluster.user("friend")
    crowd = [cluster.user(f"member{n}") for n in range(3)]
    await cluster.chats.create_direct(alice, friend)
    await cluster.chats.create_group(alice, "big", [member for member, _ in crowd])  # 4 members: too many
    await cluster.chats.create_group(alice, "small", [crowd[0][0]])  # 2 members
    sessions = {user: await cluster.connect(hub, token) for user, token in (*crowd, (friend, friend_token))}
    await hub.drain()
    for session in sessions.values():
        await events(session)
    await cluster.connect(hub, alice_token)
    await hub.drain()
    online = [PresenceChanged(alice, Presence.ONLINE)]
    assert await events(sessions[friend]) == online
    assert await events(sessions[crowd[0][0]]) == online  # they share the small group too
    assert await events(sessions[crowd[1][0]]) == []
    assert await events(sessions[crowd[2][0]]) == []
    assert (await RoutePresenceRepo(cluster.routes).statuses([alice]))[alice] is Presence.ONLINE
    await cluster.close()


async def test_sync_reads_presence_from_the_route_table(cluster: Cluster) -> None:
    hub = cluster.hub()
    alice, token = cluster.user("alice")
    bob, _ = cluster.user("bob")
    await cluster.connect(hub, token)
    statuses = await RoutePresenceRepo(cluster.routes).statuses([alice, bob])
    assert statuses == {alice: Presence.ONLINE, bob: Presence.OFFLINE}


async def test_a_removed_member_and_the_group_stop_hearing_each_others_presence_at_once(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    alice, alice_token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    group = await cluster.chats.create_group(alice, "team", [bob])
    watcher = await cluster.connect(a, alice_token)
    bob_phone = await cluster.connect(b, bob_token)
    for hub in (a, b):
        await hub.drain()
    assert await events(watcher) == [PresenceChanged(bob, Presence.ONLINE)]
    await events(bob_phone)

    await Members(cluster.chats, cluster.audiences).remove(alice, group.id, bob)
    b.disconnect(bob_phone)
    await b.drain()
    assert await events(watcher) == []
    bob_laptop = await cluster.connect(b, bob_token)
    a.disconnect(watcher)
    await a.drain()
    assert await events(bob_laptop) == []
