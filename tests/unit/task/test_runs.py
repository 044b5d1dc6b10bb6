"""The task runs' contract (leases and the log) on the fake the scheduler's tests run on, and on SQLite (the
embedded mode)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.task_runs import TTL_S, Table, TaskRunsContract
from tests.unit.task.fakes import FakeTaskRuns
from tidings.pkg.clock import FakeClock
from tidings.task.data.leases import SQLLeases
from tidings.task.data.runs import SQLRunLog


# ``engine``: a migrated SQLite database (tests/unit/conftest.py).
@pytest.fixture(params=["fake", "sqlite"])
def table(request: pytest.FixtureRequest, engine: AsyncEngine, clock: FakeClock) -> Table:
    if request.param == "fake":
        fake = FakeTaskRuns(clock, ttl_s=TTL_S)
        return (lambda holder: fake.leases(holder).lease), fake.runs
    return (lambda holder: SQLLeases(engine, ttl_s=TTL_S, clock=clock, holder=holder).lease), SQLRunLog(engine)


class TestTaskRuns(TaskRunsContract):
    pass
