"""The scheduler of the task module: tasks on cron schedules, each run once per scheduled time by one process.

Every ``task`` process runs the same loop. On each tick, for each task that is due, it tries to take the task's
``Lease``; the process that holds it runs the task, renewing the lease meanwhile, then records the run and gives
the lease back. A task is due when its schedule named a time (UTC) after its last recorded start, which is read
again under the lease: the run log is shared, so a restart or another process neither runs a task twice for one
scheduled time nor skips one it missed (a missed time runs at once, once). A run left unfinished by a process that
lost its lease (it died, or was paused past the lease) runs again as soon as another process takes the lease; the
tasks are idempotent, so it picks up where the last one stopped. Each write of a run is fenced by the lease's token:
a runner that wakes up after losing its lease cannot write. A task's failure is logged, recorded and counted, and
tried again at its next scheduled time; it never stops the loop or the other tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

import structlog
from croniter import croniter
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from tidings.pkg.clock import Clock, SystemClock
from tidings.task.biz.errors import LeaseLost
from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.biz.runs import Lease, Run, RunLog
from tidings.task.service.jobs import Job

log = structlog.get_logger("tidings.task")


def last_scheduled_ms(schedule: str, now_ms: int) -> int:
    """The latest time at or before ``now_ms`` that the cron ``schedule`` names (UTC), in Unix milliseconds."""
    after_now = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(milliseconds=1)
    return int(croniter(schedule, after_now).get_prev(float) * 1000)


def next_scheduled_ms(schedule: str, now_ms: int) -> int:
    """The first time after ``now_ms`` that the cron ``schedule`` names (UTC), in Unix milliseconds."""
    return int(croniter(schedule, datetime.fromtimestamp(now_ms / 1000, UTC)).get_next(float) * 1000)


def period_s(schedule: str) -> float:
    """Seconds between two scheduled times (the first two after a fixed instant: schedules here are regular)."""
    times = croniter(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    first = times.get_next(float)
    return float(times.get_next(float) - first)


def _next_run(schedule: str | None, due: bool, now_ms: int) -> int | None:
    """When a task runs next: now if it is ``due``, else at its next scheduled time; never on its own on demand."""
    if schedule is None:
        return None
    return now_ms if due else next_scheduled_ms(schedule, now_ms)


@dataclass(frozen=True)
class TaskStatus:
    """A task as ``tidings task list`` shows it: its schedule, its last run, and when it runs next (``due``: at the
    runner's next tick). A task on demand has no schedule and no next run."""

    name: str
    schedule: str | None
    last: Run | None
    next_at_ms: int | None
    due: bool


class RunningElsewhere(Exception):
    """Another task process holds the task's lease: the task is running there now."""


class Leases(Protocol):
    def lease(self, name: str) -> Lease:
        """The lease of task ``name`` (the same object on each call)."""
        ...


class TaskMetrics:
    """Per task (label ``task``: a ``job`` label would clash with the scrape target's own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.runs = Counter(
            "tidings_task_runs",
            "Task runs, by task and outcome (ok, error, timeout).",
            ["task", "outcome"],
            registry=registry,
        )
        self.items = Counter(
            "tidings_task_items", "Items a task handled (rows pruned, ...), by task.", ["task"], registry=registry
        )
        self.duration = Histogram(
            "tidings_task_run_duration_seconds", "Time of one task run, by task.", ["task"], registry=registry
        )
        self.running = Gauge(
            "tidings_task_running", "1 while this process runs the task (holds its lease).", ["task"], registry=registry
        )
        self.lease_lost = Counter(
            "tidings_task_lease_lost",
            "Runs that lost their task's lease to another process and had a write refused, by task.",
            ["task"],
            registry=registry,
        )
        self.last_success = Gauge(
            "tidings_task_last_success_timestamp_seconds",
            "When a task last ran without error.",
            ["task"],
            registry=registry,
        )
        self.period = Gauge(
            "tidings_task_period_seconds",
            "Seconds between two scheduled runs of a task (its alert fires after two periods without a success).",
            ["task"],
            registry=registry,
        )


class Scheduler:
    """Runs ``jobs`` at their scheduled times, each under its lease from ``leases``, renewed every ``renew_s``
    while it runs (well within the lease's time to live)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        leases: Leases,
        runs: RunLog,
        metrics: TaskMetrics,
        *,
        tick_s: float = 1.0,
        renew_s: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._jobs = list(jobs)
        self._leases = {job.name: leases.lease(job.name) for job in self._jobs}
        self._runs = runs
        self._metrics = metrics
        self._tick_s = tick_s
        self._renew_s = renew_s
        self._clock = clock or SystemClock()
        # The last runs as this process last saw them: a task that was not due then is not due until its next
        # scheduled time; one that looked due is read again under its lease.
        self._last: dict[str, Run] | None = None
        self._loop: asyncio.Task[None] | None = None
        for job in self._jobs:
            if job.schedule is not None:  # a task on demand has no period to miss (nor an alert)
                metrics.period.labels(job.name).set(period_s(job.schedule))

    @property
    def name(self) -> str:
        return "task-scheduler"

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def tick(self) -> list[str]:
        """Run every job due now, side by side, until all of them ended: the names of the jobs this process ran."""
        last = await self._known_runs()
        if last is None:
            return []
        due = [job for job in self._jobs if self._due(job, last.get(job.name))]
        runs = await asyncio.gather(*(self._run_leased(job, last) for job in due))
        return [job.name for job, run in zip(due, runs, strict=True) if run is not None]

    async def _known_runs(self) -> dict[str, Run] | None:
        """The last runs as this process knows them (read once); ``None`` while they cannot be read."""
        if self._last is None:
            try:
                self._last = await self._runs.last_runs([job.name for job in self._jobs])
            except Exception as exc:  # not knowing what ran, run nothing rather than twice
                log.warning("task runs unknown", error=str(exc))
        return self._last

    async def status(self) -> list[TaskStatus]:
        """Every task's schedule, last run and next run, from the shared log."""
        last = await self._runs.last_runs([job.name for job in self._jobs])
        now = self._clock.now_ms()
        answer = []
        for job in self._jobs:
            run = last.get(job.name)
            due = self._due(job, run)
            answer.append(TaskStatus(job.name, job.schedule, run, _next_run(job.schedule, due, now), due))
        return answer

    @property
    def names(self) -> list[str]:
        return [job.name for job in self._jobs]

    async def preview(self, name: str) -> int:
        """How many items a run of ``name`` now would handle, changing nothing; ``KeyError`` for an unknown task."""
        job = self._job(name)
        if job.preview is None:
            raise ValueError(f"{name} cannot say what a run would do: it has no dry run")
        return await job.preview()

    def _job(self, name: str) -> Job:
        job = next((job for job in self._jobs if job.name == name), None)
        if job is None:
            raise KeyError(name)
        return job

    async def run_now(self, name: str, progress: Progress = NO_PROGRESS) -> Run:
        """Run the task ``name`` once, now, under its lease (recorded like a scheduled run), telling ``progress`` how
        far it has come: for a process that does not run the loop (``tidings task run``). ``RunningElsewhere`` while
        another process runs it, ``KeyError`` for an unknown task."""
        run = await self._run_leased(self._job(name), {}, due_only=False, progress=progress)
        if run is None:
            raise RunningElsewhere(name)
        return run

    def _due(self, job: Job, last: Run | None) -> bool:
        """Whether ``job`` should run now, given its ``last`` run: never ran, or not since its last scheduled time,
        or left unfinished (whether its runner still runs it, only its lease can tell). A task on demand never is,
        not even to finish a run cut short: an operator runs it again."""
        if job.schedule is None:
            return False
        if last is None or last.finished_at_ms is None:
            return True
        return last.started_at_ms < last_scheduled_ms(job.schedule, self._clock.now_ms())

    async def _run(self) -> None:
        """Every tick, start each job that is due and not running here in a task of its own: a long run (a
        retention over a large backlog, a dead-letter scan waiting on Kafka) holds up no other job."""
        running: dict[str, asyncio.Task[Run | None]] = {}
        try:
            while True:
                last = await self._known_runs()
                for job in self._jobs:
                    if last is not None and job.name not in running and self._due(job, last.get(job.name)):
                        running[job.name] = asyncio.create_task(self._run_leased(job, last), name=f"task {job.name}")
                        running[job.name].add_done_callback(partial(_forget, running, job.name))
                await asyncio.sleep(self._tick_s)
        finally:
            for task in list(running.values()):
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _run_leased(
        self, job: Job, last: dict[str, Run], *, due_only: bool = True, progress: Progress = NO_PROGRESS
    ) -> Run | None:
        """Run ``job`` if this process gets its lease (and, with ``due_only``, if the shared log still says it is
        due); the run, or ``None`` if it did not run here. The lease is given back at the end."""
        lease = self._leases[job.name]
        try:
            if not await lease.acquire():
                return None
        except Exception as exc:  # the lease's store is down: not run here until it answers
            log.warning("task lease unknown", job=job.name, error=str(exc))
            return None
        try:
            if due_only:
                # Under the lease, the shared log is the truth: another process may have run it meanwhile.
                last.update(await self._runs.last_runs([job.name]))
                if not self._due(job, last.get(job.name)):
                    return None
            return await self._run_job(job, lease, last, progress)
        except Exception as exc:  # the log could not be read: run nothing rather than twice
            log.warning("task runs unknown", job=job.name, error=str(exc))
            return None
        finally:
            with contextlib.suppress(Exception):  # an unreleased lease expires by itself
                await lease.release()

    async def _run_job(self, job: Job, lease: Lease, last: dict[str, Run], progress: Progress) -> Run | None:
        """Run ``job`` under ``lease``, recording its start first; ``None`` if the start could not be recorded."""
        start = Run(job.name, self._clock.now_ms(), None, "running")
        try:
            await lease.record(start)
        except Exception as exc:  # unrecorded, a run could happen twice for one scheduled time: try next tick
            log.warning("task run not recorded; not run", job=job.name, error=str(exc))
            return None
        last[job.name] = start
        self._metrics.running.labels(job.name).set(1)
        started = time.perf_counter()
        outcome, items, error = "ok", 0, ""
        renewing = asyncio.create_task(self._renew(lease), name=f"renew {job.name}")
        try:
            async with asyncio.timeout(job.timeout_s):
                items = await job.run(progress)
        except TimeoutError:
            outcome, error = "timeout", f"did not finish within {job.timeout_s:g} s"
            log.warning("task job timed out", job=job.name, timeout_s=job.timeout_s)
        except LeaseLost:
            outcome, error = "lease_lost", "another task process took the lease; a write here was refused"
            self._metrics.lease_lost.labels(job.name).inc()
            log.warning("task lease lost; run stopped", job=job.name)
        except Exception as exc:  # a failed run is retried at the job's next scheduled time
            outcome, error = "error", repr(exc)
            log.error("task job failed", job=job.name, error=str(exc), exc_info=exc)
        else:
            self._metrics.items.labels(job.name).inc(items)
            self._metrics.last_success.labels(job.name).set_to_current_time()
            if items:
                log.info("task job ran", job=job.name, items=items)
        finally:
            renewing.cancel()
            self._metrics.running.labels(job.name).set(0)
            self._metrics.runs.labels(job.name, outcome).inc()
            self._metrics.duration.labels(job.name).observe(time.perf_counter() - started)
        finished = Run(job.name, start.started_at_ms, self._clock.now_ms(), outcome, items, error)
        if outcome == "lease_lost":
            return finished  # the new holder owns the record now
        last[job.name] = finished
        try:
            await lease.record(finished)
        except Exception as exc:  # the start is recorded: the run counts for its scheduled time either way
            log.warning("task run outcome not recorded", job=job.name, error=str(exc))
        return finished

    async def _renew(self, lease: Lease) -> None:
        """Keep the lease while the run lasts. A renewal refused means another process took it: the run's next
        write is refused by the fence, which ends it; a store that does not answer is asked again."""
        while True:
            await asyncio.sleep(self._renew_s)
            try:
                if not await lease.renew():
                    return
            except Exception as exc:
                log.warning("task lease not renewed", job=lease.name, error=str(exc))


def _forget(running: dict[str, asyncio.Task[Run | None]], name: str, _: object) -> None:
    running.pop(name, None)
