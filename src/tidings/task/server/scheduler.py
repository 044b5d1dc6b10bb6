"""The scheduler of the task module: periodic jobs, run by one process of the fleet at a time.

Every ``task`` process runs the same loop; on each tick it asks its ``Leadership`` whether it is the runner. Only the
runner runs the jobs that are due, each under its own deadline, so two processes never prune or reconcile at once
and a crashed runner is replaced by the next one that takes the lock. A job's failure is logged and counted and the
job is tried again at its next turn; it never stops the loop or the other jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from tidings.task.service.jobs import Job

log = structlog.get_logger("tidings.task")


class Leadership(Protocol):
    """Who of the task processes runs the jobs now."""

    async def hold(self) -> bool:
        """Whether this process is the runner, taking the role when it is free."""
        ...

    async def release(self) -> None: ...


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.runs = Counter(
            "tidings_task_runs",
            "Job runs, by job and outcome (ok, error, timeout).",
            ["job", "outcome"],
            registry=registry,
        )
        self.items = Counter(
            "tidings_task_items", "Items a job handled (rows pruned, ...), by job.", ["job"], registry=registry
        )
        self.duration = Histogram(
            "tidings_task_run_duration_seconds", "Time of one job run, by job.", ["job"], registry=registry
        )
        self.leader = Gauge("tidings_task_leader", "1 when this process runs the scheduled jobs.", registry=registry)
        self.last_success = Gauge(
            "tidings_task_last_success_timestamp_seconds",
            "When a job last ran without error.",
            ["job"],
            registry=registry,
        )


class Scheduler:
    """Runs ``jobs`` on their intervals while ``leadership`` says this process is the runner."""

    def __init__(
        self,
        jobs: Sequence[Job],
        leadership: Leadership,
        metrics: TaskMetrics,
        *,
        tick_s: float = 1.0,
        jitter: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = list(jobs)
        self._leadership = leadership
        self._metrics = metrics
        self._tick_s = tick_s
        self._jitter = jitter
        self._clock = clock
        # A new runner runs every job at once: the previous one may have died just before their turn.
        self._due = {job.name: 0.0 for job in self._jobs}
        self._loop: asyncio.Task[None] | None = None

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
        self._metrics.leader.set(0)
        await self._leadership.release()

    async def tick(self) -> list[str]:
        """One turn of the loop: the names of the jobs run (none when this process is not the runner)."""
        try:
            leader = await self._leadership.hold()
        except Exception as exc:  # the lock's store is down: not the runner until it answers again
            log.warning("task leadership unknown", error=str(exc))
            leader = False
        self._metrics.leader.set(1 if leader else 0)
        if not leader:
            for name in self._due:
                self._due[name] = 0.0
            return []
        ran: list[str] = []
        for job in self._jobs:
            if self._clock() >= self._due[job.name]:
                await self._run_job(job)
                spread = job.every_s * self._jitter * random.random()  # noqa: S311 - spreading, not security
                self._due[job.name] = self._clock() + job.every_s + spread
                ran.append(job.name)
        return ran

    async def _run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._tick_s)

    async def _run_job(self, job: Job) -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(job.timeout_s):
                items = await job.run()
        except TimeoutError:
            outcome = "timeout"
            log.warning("task job timed out", job=job.name, timeout_s=job.timeout_s)
        except Exception as exc:  # a failed run is retried at the job's next turn
            outcome = "error"
            log.error("task job failed", job=job.name, error=str(exc), exc_info=exc)
        else:
            self._metrics.items.labels(job.name).inc(items)
            self._metrics.last_success.labels(job.name).set_to_current_time()
            if items:
                log.info("task job ran", job=job.name, items=items)
        finally:
            self._metrics.runs.labels(job.name, outcome).inc()
            self._metrics.duration.labels(job.name).observe(time.perf_counter() - started)
