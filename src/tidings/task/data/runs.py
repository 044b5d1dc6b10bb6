"""``SQLRunLog``: each task's last run in the ``task_runs`` table."""

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
                rows = await conn.execute(select(task_runs).where(task_runs.c.name.in_(list(names))))
                return {row.name: _run_from_row(row) for row in rows}

    async def record(self, run: Run) -> None:
        values = {
            "started_at_ms": run.started_at_ms,
            "finished_at_ms": run.finished_at_ms,
            "outcome": run.outcome,
            "items": run.items,
            "error": run.error[:512],
        }
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                # One runner at a time writes a task's row (the scheduler's leadership): update, else insert.
                updated = await conn.execute(task_runs.update().where(task_runs.c.name == run.name).values(values))
                if updated.rowcount == 0:
                    await conn.execute(task_runs.insert().values(name=run.name, **values))


def _run_from_row(row: Any) -> Run:
    return Run(row.name, row.started_at_ms, row.finished_at_ms, row.outcome, row.items, row.error)
