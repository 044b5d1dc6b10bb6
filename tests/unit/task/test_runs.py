"""The task runs' log contract on the fake the scheduler's tests run on, and on SQLite (the embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.task_runs import RunLogContract
from tests.unit.task.fakes import FakeRunLog
from tidings.task.biz.runs import RunLog
from tidings.task.data.runs import SQLRunLog


# ``engine``: a migrated SQLite database (tests/unit/conftest.py).
@pytest.fixture(params=["fake", "sqlite"])
async def runs(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[RunLog]:
    if request.param == "fake":
        yield FakeRunLog()
        return
    yield SQLRunLog(engine)


class TestRunLog(RunLogContract):
    pass
