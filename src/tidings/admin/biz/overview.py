"""The numbers operators watch: messages per day, daily active users and the busiest conversations (the task
module's rollups), and how far each consumer group lags with how many dead letters wait."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tidings.admin.biz.model import Caller, DeadLetters, GroupLag, Role
from tidings.admin.biz.operators import require
from tidings.admin.biz.ports import Pipeline
from tidings.pkg import errors
from tidings.pkg.clock import Clock
from tidings.task.stats import DAY_MS, Activity, ConversationVolume, Grain, StatsReader

MAX_DAYS = 366


@dataclass(frozen=True)
class Days:
    """Daily rollups of the last days (oldest first; a day not computed yet is absent) and the busiest
    conversations of the newest day computed."""

    activity: list[Activity]
    top_day_ms: int | None
    top: list[ConversationVolume]


@dataclass(frozen=True)
class PipelineState:
    lag: list[GroupLag]
    dead_letters: list[DeadLetters]


class Overview:
    def __init__(self, stats: StatsReader, pipeline: Pipeline, clock: Clock) -> None:
        self._stats = stats
        self._pipeline = pipeline
        self._clock = clock

    async def days(self, caller: Caller, days: int) -> Days:
        require(caller, Role.VIEWER)
        if not 1 <= days <= MAX_DAYS:
            errors.raise_for_fields({"days": f"1-{MAX_DAYS}"})
        today = Grain.DAY.start_of(self._clock.now_ms())
        activity = await self._stats.activity(Grain.DAY, today - (days - 1) * DAY_MS, today + DAY_MS)
        top_day = activity[-1].start_ms if activity else None
        top = await self._stats.top_conversations(top_day) if top_day is not None else []
        return Days(activity, top_day, top)

    async def pipeline(self, caller: Caller) -> PipelineState:
        require(caller, Role.VIEWER)
        async with asyncio.TaskGroup() as group:
            lag = group.create_task(self._pipeline.lag())
            dead = group.create_task(self._pipeline.dead_letters())
        return PipelineState(lag.result(), dead.result())
