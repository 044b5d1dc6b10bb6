"""The behaviour every route table adapter must have; run in-process (unit) and on Redis (integration).

A subclass provides a ``table`` fixture: an empty table with a 30 s TTL that reads time from the ``clock`` fixture,
so expiry is tested by moving the clock, not by waiting.
"""

from __future__ import annotations

import pytest

from tidings.pkg.clock import FakeClock
from tidings.realtime.model import Route, Routes, RouteTable

TTL_S = 30


class RouteTableContract:
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    async def test_an_instance_finds_its_beacon_from_its_second_on(self, table: RouteTable) -> None:
        assert not await table.beacon("10.0.0.1:9080")
        assert await table.beacon("10.0.0.1:9080")
        assert not await table.beacon("10.0.0.2:9080")

    async def test_a_route_is_found_once_written_and_its_user_came_online(self, table: RouteTable) -> None:
        assert await table.touch([Route(1, "s1", "10.0.0.1:9080")]) == [1]
        assert await table.routes_for([1, 2]) == {1: {"s1": "10.0.0.1:9080"}}
        assert await table.online([1, 2]) == {1}

    async def test_every_device_of_a_user_has_its_own_route_and_only_the_first_brings_them_online(
        self, table: RouteTable
    ) -> None:
        assert await table.touch([Route(1, "phone", "a:1")]) == [1]
        assert await table.touch([Route(1, "laptop", "b:1")]) == []
        assert await table.routes_for([1]) == {1: {"phone": "a:1", "laptop": "b:1"}}

    async def test_one_batch_with_two_devices_of_a_new_user_reports_them_online_once(self, table: RouteTable) -> None:
        came_online = await table.touch([Route(1, "phone", "a:1"), Route(1, "laptop", "a:1"), Route(2, "x", "a:1")])
        assert came_online == [1, 2]

    async def test_a_route_not_refreshed_expires_and_a_refreshed_one_lives_on(
        self, table: RouteTable, clock: FakeClock
    ) -> None:
        await table.touch([Route(1, "crashed", "a:1"), Route(1, "alive", "b:1")])
        clock.advance(s=TTL_S * 2 / 3)
        assert await table.touch([Route(1, "alive", "b:1")]) == []  # a refresh: the user was online already
        clock.advance(s=TTL_S * 2 / 3)
        assert await table.routes_for([1]) == {1: {"alive": "b:1"}}
        clock.advance(s=TTL_S)
        assert await table.routes_for([1]) == {}
        assert await table.online([1]) == set()

    async def test_a_user_whose_routes_all_expired_comes_online_again_on_the_next_write(
        self, table: RouteTable, clock: FakeClock
    ) -> None:
        await table.touch([Route(1, "s1", "a:1")])
        clock.advance(s=TTL_S + 1)
        assert await table.touch([Route(1, "s2", "a:1")]) == [1]
        assert await table.routes_for([1]) == {1: {"s2": "a:1"}}

    async def test_removing_the_last_live_route_takes_the_user_offline(self, table: RouteTable) -> None:
        await table.touch([Route(1, "phone", "a:1"), Route(1, "laptop", "a:1"), Route(2, "x", "a:1")])
        assert await table.remove([Route(1, "phone", "a:1")]) == []
        assert await table.routes_for([1, 2]) == {1: {"laptop": "a:1"}, 2: {"x": "a:1"}}
        assert await table.remove([Route(1, "laptop", "a:1"), Route(2, "x", "a:1")]) == [1, 2]
        assert await table.routes_for([1, 2]) == {}

    async def test_removing_every_device_of_a_user_in_one_batch_takes_them_offline(self, table: RouteTable) -> None:
        await table.touch([Route(1, "phone", "a:1"), Route(1, "laptop", "b:1")])
        assert await table.remove([Route(1, "phone", "a:1"), Route(1, "laptop", "b:1")]) == [1]

    async def test_removing_a_route_already_gone_reports_the_user_offline_if_nothing_is_left(
        self, table: RouteTable
    ) -> None:
        assert await table.remove([Route(5, "never", "a:1")]) == [5]
        await table.touch([Route(6, "live", "a:1")])
        assert await table.remove([Route(6, "other", "a:1")]) == []

    async def test_many_users_are_looked_up_in_one_call(self, table: RouteTable) -> None:
        routes = [
            Route(user, f"u{user}-d{device}", f"10.0.0.{user % 3}:9080")
            for user in range(1, 201)
            for device in range(user % 3)
        ]
        await table.touch(routes)
        expected: Routes = {}
        for user, session, instance in routes:
            expected.setdefault(user, {})[session] = instance
        asked = [*range(1, 201), 999, 999, 5]
        assert await table.routes_for(asked) == expected
        assert await table.routes_for([]) == {}

    async def test_the_sweep_reports_a_crashed_instance_s_users_offline_once(
        self, table: RouteTable, clock: FakeClock
    ) -> None:
        await table.touch([Route(1, "on-crashed", "dead:1"), Route(2, "on-crashed", "dead:1"), Route(2, "ok", "b:1")])
        clock.advance(s=TTL_S * 2 / 3)
        await table.touch([Route(2, "ok", "b:1")])
        clock.advance(s=TTL_S * 2 / 3)
        assert await table.sweep() == [1]  # user 2 is still online through "ok"
        assert await table.sweep() == []
        assert await table.routes_for([1, 2]) == {2: {"ok": "b:1"}}

    async def test_the_sweep_leaves_refreshed_and_removed_routes_alone(
        self, table: RouteTable, clock: FakeClock
    ) -> None:
        await table.touch([Route(1, "s", "a:1"), Route(2, "s", "a:1")])
        clock.advance(s=TTL_S * 2 / 3)
        await table.touch([Route(1, "s", "a:1")])
        await table.remove([Route(2, "s", "a:1")])
        clock.advance(s=TTL_S * 2 / 3)
        assert await table.sweep() == []
        assert await table.routes_for([1, 2]) == {1: {"s": "a:1"}}
        clock.advance(s=TTL_S)
        assert await table.sweep() == [1]
