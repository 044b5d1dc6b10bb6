"""A run tells its progress: each task says what it counts, the scheduler hands an operator's progress to the run,
and ``tidings task run`` shows it as a bar on a terminal and as a plain line now and then elsewhere."""

from __future__ import annotations

import io

from prometheus_client import CollectorRegistry
from rich.console import Console

from tests.contracts.task_stats import DAY0
from tests.unit.task.fakes import (
    FakeActivitySource,
    FakeDeadLetterLog,
    FakeReplayLog,
    FakeRollups,
    FakeTaskRuns,
    FakeTokens,
    RecordingProgress,
)
from tests.unit.task.test_stats import two_days
from tidings.pkg.clock import FakeClock
from tidings.task.biz.deadletters import DeadLetters
from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.biz.pruning import Pruning
from tidings.task.biz.stats import StatsRollup
from tidings.task.server.progress import LineProgress, TerminalProgress, shown
from tidings.task.server.scheduler import Scheduler, TaskMetrics
from tidings.task.service.jobs import Job
from tidings.task.stats import DAY_MS, HOUR_MS


async def test_pruning_counts_what_the_turn_may_reach_then_each_batch() -> None:
    tokens = FakeTokens([1_000, 2_000, 3_000, 4_000, 5_000, 10_000])
    progress = RecordingProgress()
    assert await Pruning(tokens, lambda: 11_000, keep_s=5, batch=2, max_batches=2).run(progress) == 4
    assert (progress.totals, progress.done) == ([4], 4)  # 5 may go, 4 this turn


async def test_a_scheduled_pruning_does_not_count_first() -> None:
    tokens = FakeTokens([1_000])
    counted: list[int] = []
    count = tokens.count

    async def counting(before_ms: int) -> int:
        counted.append(before_ms)
        return await count(before_ms)

    tokens.count = counting  # type: ignore[method-assign]
    assert await Pruning(tokens, lambda: 11_000, keep_s=5).run() == 1
    assert counted == []


async def test_stats_count_buckets_and_dead_letters_count_topics() -> None:
    source = FakeActivitySource()
    await source.seed(two_days())
    progress = RecordingProgress()
    rollup = StatsRollup(source, FakeRollups(), lambda: DAY0 + DAY_MS + 2 * HOUR_MS, settle_s=300, max_buckets=100)
    assert await rollup.run(progress) == 7
    assert (progress.totals, progress.done) == ([7], 7)

    log, progress = FakeDeadLetterLog(), RecordingProgress()
    log.dead_letter("a.dlq")
    await DeadLetters(log, FakeReplayLog(), ["a.dlq", "b.dlq"], lambda: 0).report(progress)
    assert (progress.totals, progress.done) == ([2], 2)


async def test_the_scheduler_hands_an_operators_progress_to_the_run_and_its_own_runs_none() -> None:
    seen: list[Progress] = []

    async def run(progress: Progress) -> int:
        seen.append(progress)
        progress.start(3)
        progress.advance(3)
        return 3

    table = FakeTaskRuns(FakeClock(1_796_569_380_000))
    runner = Scheduler(
        [Job("a", schedule="0 * * * *", run=run)],
        table.leases("p1"),
        table.runs,
        TaskMetrics(CollectorRegistry()),
        clock=table.clock,
    )
    watched = RecordingProgress()
    assert (await runner.run_now("a", watched)).items == 3
    assert (watched.totals, watched.done) == ([3], 3)
    table.clock.advance(s=3600)
    assert await runner.tick() == ["a"]
    assert seen == [watched, NO_PROGRESS]


def test_off_a_terminal_a_line_now_and_then_and_none_for_a_short_run() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = LineProgress("reindex", out, every_s=10, clock=lambda: now[0])
    progress.start(400)
    progress.advance(100)
    assert out.getvalue() == ""
    now[0] = 10.0
    progress.advance(100)
    now[0] = 15.0
    progress.advance(100)
    assert out.getvalue() == "reindex: 200 of about 400 items (50%)\n"
    unknown = io.StringIO()
    counting = LineProgress("reconcile", unknown, every_s=0, clock=lambda: now[0])
    counting.start(None)
    counting.advance(7)
    assert unknown.getvalue() == "reconcile: 7 items\n"


def test_on_a_terminal_a_bar_of_the_items_done() -> None:
    out = io.StringIO()
    with TerminalProgress("reindex", Console(file=out, force_terminal=True, width=100, color_system=None)) as bar:
        bar.start(40)
        bar.advance(10)
    # The bar redrawn in place; its last state stays on the screen.
    last = out.getvalue().split("\x1b[2K")[-1]
    assert last.split()[0] == "reindex"
    assert "10/40" in last
    assert "25%" in last


def test_a_stream_that_is_no_terminal_gets_plain_lines() -> None:
    with shown("stats", io.StringIO()) as progress:
        assert isinstance(progress, LineProgress)
