"""In-memory fakes of the task's ports that stand for another module's store: they are that module's fakes, held to
its store contract (test_fakes.py), with what the task's tests observe added."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from tests.contracts.task_stats import Seeded
from tests.unit.account.fakes import FakeRefreshTokens
from tidings.pkg.clock import FakeClock
from tidings.service.account.biz.ports import RefreshToken
from tidings.service.chat.message import Message
from tidings.task.biz.deadletters import DeadLetter, MissingTopic
from tidings.task.biz.errors import LeaseLost, Unavailable
from tidings.task.biz.reindex import StoredUser, recent_key
from tidings.task.biz.runs import Run
from tidings.task.biz.stats import Counts
from tidings.task.stats import Activity, ConversationVolume, Grain


class FakeTokens(FakeRefreshTokens):
    """Account's refresh tokens as the retention task prunes them, recording each prune's arguments."""

    def __init__(self, expiries: Sequence[int] = ()) -> None:
        super().__init__()
        self.calls: list[tuple[int, int]] = []
        for token_id, expires_at_ms in enumerate(expiries, start=1):
            self.tokens[token_id] = RefreshToken(token_id, 1, token_id, "h", expires_at_ms)

    @property
    def expiries(self) -> list[int]:
        """The expiry instants of the tokens still stored."""
        return sorted(token.expires_at_ms for token in self.tokens.values())

    async def prune(self, before_ms: int, limit: int) -> int:
        self.calls.append((before_ms, limit))
        return await self.prune_expired(before_ms, limit)

    async def count(self, before_ms: int) -> int:
        return sum(1 for token in self.tokens.values() if token.expires_at_ms < before_ms)


@dataclass
class _Row:
    holder: str = ""
    token: int = 0
    lease_until_ms: int = 0
    run: Run | None = None
    checkpoint: str = ""


class FakeTaskRuns:
    """The ``task_runs`` table in memory, shared by the "processes" of a test: each takes its ``leases(holder)``;
    ``runs`` is the log they all read. ``down`` makes it unreachable."""

    def __init__(self, clock: FakeClock, *, ttl_s: float = 30.0) -> None:
        self.clock = clock
        self.ttl_ms = int(ttl_s * 1000)
        self.rows: dict[str, _Row] = {}
        self.down = False
        self.runs = FakeRunLog(self)
        self._processes: dict[str, FakeLeases] = {}

    def leases(self, holder: str) -> FakeLeases:
        """The leases of the process ``holder`` (the same ones on each call, as a process keeps its own)."""
        if holder not in self._processes:
            self._processes[holder] = FakeLeases(self, holder)
        return self._processes[holder]

    def check(self) -> None:
        if self.down:
            raise Unavailable("task runs unreachable")


class FakeRunLog:
    def __init__(self, table: FakeTaskRuns) -> None:
        self._table = table

    async def last_runs(self, names: Sequence[str]) -> dict[str, Run]:
        self._table.check()
        rows = self._table.rows
        return {name: run for name in names if name in rows and (run := rows[name].run) is not None}


class FakeLeases:
    def __init__(self, table: FakeTaskRuns, holder: str) -> None:
        self._table = table
        self._holder = holder
        self._leases: dict[str, FakeLease] = {}

    def lease(self, name: str) -> FakeLease:
        return self._leases.setdefault(name, FakeLease(self._table, name, self._holder))


class FakeLease:
    def __init__(self, table: FakeTaskRuns, name: str, holder: str) -> None:
        self._table = table
        self._name = name
        self._holder = holder
        self.token: int | None = None
        self.released = 0

    @property
    def name(self) -> str:
        return self._name

    async def acquire(self) -> bool:
        if await self.renew():
            return True
        row = self._table.rows.setdefault(self._name, _Row())
        now = self._table.clock.now_ms()
        if row.token and row.lease_until_ms > now:
            return False
        row.holder, row.token, row.lease_until_ms = self._holder, row.token + 1, now + self._table.ttl_ms
        self.token = row.token
        return True

    async def renew(self) -> bool:
        self._table.check()
        if self.token is None:
            return False
        if not self._ours():
            self.token = None
            return False
        self._table.rows[self._name].lease_until_ms = self._table.clock.now_ms() + self._table.ttl_ms
        return True

    async def release(self) -> None:
        self._table.check()
        self.released += 1
        if self.token is not None and self._ours():
            self._table.rows[self._name].lease_until_ms = 0
        self.token = None

    async def record(self, run: Run) -> None:
        self.fence()
        self._table.rows[self._name].run = run

    async def load_checkpoint(self) -> str:
        self._table.check()
        row = self._table.rows.get(self._name)
        return row.checkpoint if row else ""

    async def save_checkpoint(self, checkpoint: str) -> None:
        self.fence()
        self._table.rows[self._name].checkpoint = checkpoint

    def fence(self) -> None:
        """What a fenced write checks first: ``LeaseLost`` unless the lease is still ours."""
        self._table.check()
        if not self._ours():
            raise LeaseLost(self._name)

    def _ours(self) -> bool:
        row = self._table.rows.get(self._name)
        return row is not None and self.token is not None and (row.holder, row.token) == (self._holder, self.token)


class FakeActivitySource:
    """The sources of the stats in memory: what was created when (``seeded``); counts how often it is read."""

    def __init__(self) -> None:
        self.seeded = Seeded()
        self.reads = 0

    async def seed(self, seeded: Seeded) -> None:
        self.seeded.messages.extend(seeded.messages)
        self.seeded.users.extend(seeded.users)
        self.seeded.conversations.extend(seeded.conversations)

    async def first_activity_ms(self) -> int | None:
        times = [m.created_at_ms for m in self.seeded.messages] + self.seeded.users + self.seeded.conversations
        return min(times, default=None)

    async def counts(self, start_ms: int, end_ms: int) -> Counts:
        self.reads += 1
        sent = [m for m in self.seeded.messages if start_ms <= m.created_at_ms < end_ms]
        return Counts(
            len(sent),
            len({m.sender_id for m in sent}),
            sum(1 for created in self.seeded.users if start_ms <= created < end_ms),
            sum(1 for created in self.seeded.conversations if start_ms <= created < end_ms),
        )

    async def top_conversations(self, start_ms: int, end_ms: int, limit: int) -> list[ConversationVolume]:
        volumes = Counter(m.conversation_id for m in self.seeded.messages if start_ms <= m.created_at_ms < end_ms)
        ranked = sorted(volumes.items(), key=lambda item: (-item[1], item[0]))
        return [ConversationVolume(conversation, count) for conversation, count in ranked[:limit]]


class FakeRollups:
    """The rollups' tables in memory; ``fail_after`` saves, the next one fails (the run is cut short there)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[Grain, int], Activity] = {}
        self.tops: dict[int, list[ConversationVolume]] = {}
        self.checkpoints: dict[Grain, int] = {}
        self.saves = 0
        self.fail_after: int | None = None

    async def checkpoint(self, grain: Grain) -> int | None:
        return self.checkpoints.get(grain)

    async def save(self, activity: Activity, top: Sequence[ConversationVolume] | None, *, computed_at_ms: int) -> None:
        if self.fail_after is not None and self.saves >= self.fail_after:
            raise Unavailable("rollups unreachable")
        self.saves += 1
        self.rows[(activity.grain, activity.start_ms)] = activity
        if top is not None:
            self.tops[activity.start_ms] = list(top)
        if activity.complete:
            end = activity.start_ms + activity.grain.ms
            self.checkpoints[activity.grain] = max(end, self.checkpoints.get(activity.grain, end))

    async def activity(self, grain: Grain, from_ms: int, to_ms: int) -> list[Activity]:
        return [row for (g, start), row in sorted(self.rows.items()) if g is grain and from_ms <= start < to_ms]

    async def top_conversations(self, day_ms: int) -> list[ConversationVolume]:
        return list(self.tops.get(day_ms, []))


class FakeDeadLetterLog:
    """Dead-letter topics in memory: ``topics`` holds each existing topic's records in offset order (one partition),
    ``published`` what was republished; ``fail_republish`` makes the next republish fail."""

    def __init__(self, *, batch: int = 3) -> None:
        self.topics: dict[str, list[DeadLetter]] = {}
        self.published: list[DeadLetter] = []
        self.fail_republish = False
        self._batch = batch

    def dead_letter(
        self,
        topic: str,
        *,
        reason: str = "handler_error",
        timestamp_ms: int = 1_000,
        key: bytes = b"k",
        value: bytes = b"v",
        headers: tuple[tuple[str, bytes], ...] = (),
        group: str = "persist",
        error: str = "ValueError: bad",
    ) -> DeadLetter:
        records = self.topics.setdefault(topic, [])
        letter = DeadLetter(
            topic,
            0,
            len(records),
            timestamp_ms,
            topic.removesuffix(".dlq"),
            group,
            reason,
            error,
            key,
            value,
            headers,
        )
        records.append(letter)
        return letter

    async def read(self, topic: str) -> AsyncGenerator[list[DeadLetter], None]:
        if topic not in self.topics:
            raise MissingTopic(topic)
        records = list(self.topics[topic])
        for start in range(0, len(records), self._batch):
            yield records[start : start + self._batch]

    async def republish(self, letters: Sequence[DeadLetter]) -> None:
        if self.fail_republish:
            self.fail_republish = False
            raise Unavailable("event bus unreachable")
        self.published.extend(letters)


class FakeReplayLog:
    """The replayed dead letters in memory: (topic, partition, offset) -> replayed at."""

    def __init__(self) -> None:
        self.replays: dict[tuple[str, int, int], int] = {}

    async def replayed(self, topic: str, positions: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        return {position for position in positions if (topic, *position) in self.replays}

    async def record(self, letters: Sequence[DeadLetter], replayed_at_ms: int) -> None:
        for letter in letters:
            self.replays.setdefault((letter.topic, letter.partition, letter.offset), replayed_at_ms)


class RecordingLogger:
    """A ``Logger`` keeping each line: (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, *args: Any, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, *args: Any, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def error(self, event: str, *args: Any, **fields: Any) -> None:
        self.lines.append(("error", event, fields))


class RecordingProgress:
    """A ``Progress`` keeping what a run told it: each total it started with, and the items done."""

    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.done = 0

    def start(self, total: int | None) -> None:
        self.totals.append(total)

    def advance(self, n: int) -> None:
        self.done += n


class FakeIndexSource:
    """Chat's messages and account's users in memory, as the reindex task reads them; ``on_read`` runs before each
    read of messages (something happening while the copy goes on), ``fail_after`` reads of messages, the next one
    fails (the run dies there)."""

    def __init__(self) -> None:
        self.messages: dict[tuple[int, int], Message] = {}
        self.users: dict[int, StoredUser] = {}
        self.on_read: Callable[[], Awaitable[None]] | None = None
        self.fail_after: int | None = None
        self.reads = 0

    async def seed(self, messages: Sequence[Message], users: Sequence[StoredUser]) -> None:
        self.messages.update({(m.conversation_id, m.seq): m for m in messages})
        self.users.update({u.id: u for u in users})

    async def estimate(self) -> int:
        return len(self.messages) + len(self.users)

    async def messages_after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        await self._read()
        return [self.messages[key] for key in sorted(self.messages) if key > (conversation_id, seq)][:limit]

    async def messages_since(self, since_ms: int, after: tuple[int, ...], limit: int) -> list[Message]:
        await self._read()
        recent = sorted((m for m in self.messages.values() if m.created_at_ms >= since_ms), key=recent_key)
        return [m for m in recent if recent_key(m) > after][:limit]

    async def users_after(self, user_id: int, limit: int) -> list[StoredUser]:
        return [self.users[key] for key in sorted(self.users) if key > user_id][:limit]

    async def users_updated_since(self, since_ms: int, user_id: int, limit: int) -> list[StoredUser]:
        found = [self.users[key] for key in sorted(self.users) if key > user_id]
        return [u for u in found if u.updated_at_ms >= since_ms][:limit]

    async def sender_names(self, user_ids: Collection[int]) -> dict[int, str]:
        return {user_id: self.users[user_id].display_name for user_id in user_ids if user_id in self.users}

    async def _read(self) -> None:
        if self.fail_after is not None and self.reads >= self.fail_after:
            raise Unavailable("database unreachable")
        self.reads += 1
        if self.on_read is not None:
            await self.on_read()
