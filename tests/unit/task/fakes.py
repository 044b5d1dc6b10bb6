"""In-memory fakes of the task's ports that stand for another module's store: they are that module's fakes, held to
its store contract (test_fakes.py), with what the task's tests observe added."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.unit.account.fakes import FakeRefreshTokens
from tidings.pkg.clock import FakeClock
from tidings.service.account.biz.ports import RefreshToken
from tidings.task.biz.errors import LeaseLost, Unavailable
from tidings.task.biz.runs import Run


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
