"""``CallBatcher``: items waiting when a call starts travel in it, each answered on its own."""

from __future__ import annotations

import asyncio

import pytest

from tidings.api.account.v1 import errors as account_errors
from tidings.pkg import errors
from tidings.pkg.batching import CallBatcher


class Callee:
    """Answers each item with its double once released; records every call's items."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.failure: BaseException | None = None

    async def __call__(self, items: list[int], time_left_s: float | None) -> list[int]:
        self.calls.append(items)
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return [item * 2 for item in items]


async def test_items_that_wait_while_a_call_runs_go_together_in_the_next_one() -> None:
    callee = Callee()
    batcher = CallBatcher(callee, callee="doubler", max_calls=1)
    first = asyncio.create_task(batcher.submit(1, None))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(item, None)) for item in (2, 3, 4)]
    await asyncio.sleep(0)
    callee.release.set()
    assert [await task for task in (first, *rest)] == [2, 4, 6, 8]
    assert callee.calls == [[1], [2, 3, 4]]


async def test_an_item_whose_caller_gave_up_before_its_call_is_left_out() -> None:
    callee = Callee()
    batcher = CallBatcher(callee, callee="doubler", max_calls=1)
    first = asyncio.create_task(batcher.submit(1, None))
    await asyncio.sleep(0)
    gone = asyncio.create_task(batcher.submit(2, None))
    kept = asyncio.create_task(batcher.submit(3, None))
    await asyncio.sleep(0)
    gone.cancel()
    callee.release.set()
    assert (await first, await kept) == (2, 6)
    assert callee.calls == [[1], [3]]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(account_errors.token_revoked("no"), "TOKEN_REVOKED"), (ConnectionError("refused"), "UNAVAILABLE")],
)
async def test_a_failed_call_fails_each_of_its_items_with_an_error_of_its_own(
    failure: BaseException, reason: str
) -> None:
    callee = Callee()
    callee.failure = failure
    callee.release.set()
    batcher = CallBatcher(callee, callee="doubler")
    outcomes = await asyncio.gather(*(batcher.submit(item, None) for item in (1, 2)), return_exceptions=True)
    assert all(isinstance(outcome, errors.TidingsError) and outcome.reason == reason for outcome in outcomes)
    assert outcomes[0] is not outcomes[1]
    if reason == "UNAVAILABLE":
        assert "doubler" in str(outcomes[0])
