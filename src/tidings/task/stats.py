"""The activity rollups the ``stats`` task keeps, published for those who read them (the admin module): per UTC hour
and day, messages, active senders, new users and new conversations, and each day's busiest conversations.

``StatsReader`` is the port a reader takes; ``tidings.task.store.stats.SQLStatsReader`` serves it from the task
module's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class Grain(StrEnum):
    """The size of a bucket; buckets start at a whole UTC hour or at UTC midnight."""

    HOUR = "hour"
    DAY = "day"

    @property
    def ms(self) -> int:
        return HOUR_MS if self is Grain.HOUR else DAY_MS

    def start_of(self, at_ms: int) -> int:
        """The start of the bucket holding the instant ``at_ms`` (Unix milliseconds; Unix time has no leap seconds,
        so every UTC hour and day is a whole multiple of its length)."""
        return at_ms - at_ms % self.ms


@dataclass(frozen=True)
class Activity:
    """One bucket's counts: messages created in ``[start_ms, start_ms + grain.ms)``, the distinct users who sent
    them, users who signed up and conversations created in it.

    ``complete`` is false for a bucket still open (or closed too recently for late messages to have been stored):
    its counts are recomputed at every run until it is complete.
    """

    grain: Grain
    start_ms: int
    messages: int
    active_senders: int
    new_users: int
    new_conversations: int
    complete: bool


@dataclass(frozen=True)
class ConversationVolume:
    """A conversation and how many messages were created in it during a bucket."""

    conversation_id: int
    messages: int


class StatsReader(Protocol):
    """What a reader of the rollups asks."""

    async def activity(self, grain: Grain, from_ms: int, to_ms: int) -> list[Activity]:
        """The buckets of ``grain`` starting in ``[from_ms, to_ms)``, oldest first; a bucket not yet computed is
        absent."""
        ...

    async def top_conversations(self, day_ms: int) -> list[ConversationVolume]:
        """The busiest conversations of the UTC day starting at ``day_ms``, busiest first (ties: lower id first)."""
        ...
