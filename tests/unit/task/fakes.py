"""In-memory fakes of the task's ports that stand for another module's store: they are that module's fakes, held to
its store contract (test_fakes.py), with what the task's tests observe added."""

from __future__ import annotations

from collections.abc import Sequence

from tests.unit.account.fakes import FakeRefreshTokens
from tidings.service.account.biz.ports import RefreshToken
from tidings.task.biz.errors import Unavailable
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

    async def prune_expired(self, before_ms: int, limit: int) -> int:
        self.calls.append((before_ms, limit))
        return await super().prune_expired(before_ms, limit)

    async def count_expired(self, before_ms: int) -> int:
        return sum(1 for token in self.tokens.values() if token.expires_at_ms < before_ms)


class FakeRunLog:
    """The task runs' shared log in memory; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.down = False

    async def last_runs(self, names: Sequence[str]) -> dict[str, Run]:
        self._check()
        return {name: self.runs[name] for name in names if name in self.runs}

    async def record(self, run: Run) -> None:
        self._check()
        self.runs[run.name] = run

    def _check(self) -> None:
        if self.down:
            raise Unavailable("run log unreachable")
