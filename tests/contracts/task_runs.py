"""The contract of the task runs' log (``RunLog``): each task's last run, replaced by the next one.

A subclass provides a ``runs`` fixture: an empty log.
"""

from __future__ import annotations

from tidings.task.biz.runs import Run, RunLog


class RunLogContract:
    async def test_a_task_that_never_ran_has_no_run(self, runs: RunLog) -> None:
        assert await runs.last_runs(["retention", "stats"]) == {}

    async def test_a_run_is_kept_and_the_next_one_replaces_it(self, runs: RunLog) -> None:
        started = Run("retention", 1_000, None, "running")
        await runs.record(started)
        await runs.record(Run("stats", 1_500, 1_600, "ok", 7))
        assert await runs.last_runs(["retention", "stats", "other"]) == {
            "retention": started,
            "stats": Run("stats", 1_500, 1_600, "ok", 7),
        }
        finished = Run("retention", 1_000, 2_000, "error", 3, "RuntimeError('boom')")
        await runs.record(finished)
        assert await runs.last_runs(["retention"]) == {"retention": finished}

    async def test_only_the_names_asked_for_are_answered(self, runs: RunLog) -> None:
        await runs.record(Run("retention", 1_000, 1_100, "ok"))
        await runs.record(Run("stats", 1_000, 1_100, "timeout", 0, "did not finish within 60 s"))
        assert set(await runs.last_runs(["stats"])) == {"stats"}
