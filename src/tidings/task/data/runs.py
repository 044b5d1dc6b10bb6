"""``SQLRunLog``: each task's last run, read from the ``task_runs`` table (its lease writes it: ``data/leases.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.task.biz.errors import Unavailable
from tidings.task.biz.runs import Run
from tidings.task.tables import task_runs


class SQLRunLog(SQLRepo):
    async def last_runs(self, names: Sequence[str]) -> dict[str, Run]:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                rows = await conn.execute(
                    select(task_runs).where(task_runs.c.name.in_(list(names)), task_runs.c.outcome != "")
                )
                return {row.name: _run_from_row(row) for row in rows}


def _run_from_row(row: Any) -> Run:
    return Run(row.name, row.started_at_ms, row.finished_at_ms, row.outcome, row.items, row.error)
