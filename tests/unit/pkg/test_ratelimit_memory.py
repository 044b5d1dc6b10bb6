"""The rate limiter contract on the in-process adapter of ``tidings dev``."""

from __future__ import annotations

import pytest

from tests.contracts.ratelimit import RateLimiterContract
from tidings.pkg.ratelimit import MemoryRateLimiter


class TestMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self) -> MemoryRateLimiter:
        return MemoryRateLimiter()
