"""The route table contract on the in-process adapter of ``tidings dev``."""

from __future__ import annotations

import pytest

from tests.contracts.routes import TTL_S, RouteTableContract
from tidings.pkg.clock import FakeClock
from tidings.realtime.routes import MemoryRouteTable


class TestMemoryRouteTable(RouteTableContract):
    @pytest.fixture
    def table(self, clock: FakeClock) -> MemoryRouteTable:
        return MemoryRouteTable(ttl_s=TTL_S, clock=clock)
