"""Calls that carry many callers' items: whatever waits when a call starts goes in it.

Hand-written because the pattern is this small and no library fits grpc.aio's per-call deadlines: an idle process
sends each item in a call of its own at once (no linger, no added latency), a busy one sends few large calls, so
the callee pays for a share of one call per item instead of a whole one.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    answer: asyncio.Future[R]
    # time.monotonic() by when the caller wants its answer; None: no deadline.
    deadline: float | None


class CallBatcher(Generic[T, R]):
    """``call(items, time_left_s)`` answers each item in order; up to ``max_calls`` calls of at most ``max_batch``
    items run at once. A call runs outside any caller's context, under the latest deadline of its items; an item
    whose caller gave up before its call started is left out. A call that fails fails each of its items (a
    ``TidingsError`` as it is, anything else as UNAVAILABLE naming ``callee``)."""

    def __init__(
        self,
        call: Callable[[list[T], float | None], Awaitable[Sequence[R]]],
        *,
        callee: str,
        max_batch: int = 500,
        max_calls: int = 4,
    ) -> None:
        self._call = call
        self._callee = callee
        self._max_batch = max_batch
        self._max_calls = max_calls
        self._waiting: list[_Waiting[T, R]] = []
        self._calls = 0

    async def submit(self, item: T, deadline: float | None) -> R:
        """``item``'s answer; cancelling the caller (its deadline passed) drops the answer, not the call."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, answer, deadline))
        if self._calls < self._max_calls:
            self._calls += 1
            # Outside the caller's context: the call serves many callers, each traced on its own.
            asyncio.get_running_loop().create_task(self._drain(), context=contextvars.Context())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = [w for w in self._waiting[: self._max_batch] if not w.answer.done()]
                del self._waiting[: self._max_batch]
                if batch:
                    await self._answer(batch)
        finally:
            self._calls -= 1

    async def _answer(self, batch: list[_Waiting[T, R]]) -> None:
        now = time.monotonic()
        deadlines = [w.deadline - now for w in batch if w.deadline is not None]
        timeout = max(deadlines) if len(deadlines) == len(batch) else None
        try:
            answers = await self._call([w.item for w in batch], timeout)
        except BaseException as exc:
            failure = (
                exc
                if isinstance(exc, errors.TidingsError)
                else common_errors.unavailable(f"cannot reach {self._callee}")
            )
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(failure.copy())
            if not isinstance(exc, Exception):
                raise
            return
        for waiting, answer in zip(batch, answers, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(answer)
