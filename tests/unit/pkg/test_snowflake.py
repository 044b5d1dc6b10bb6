from __future__ import annotations

import pytest

from tidings.pkg.idgen.snowflake import EPOCH_MS, ClockMovedBackwards, Snowflake, timestamp_ms


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def test_ids_of_one_worker_strictly_increase_even_past_4096_in_one_millisecond() -> None:
    clock = Clock(EPOCH_MS + 1_000)
    generator = Snowflake(7, clock_ms=clock)
    ids = [generator.next_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_id_says_when_it_was_made() -> None:
    generator = Snowflake(1, clock_ms=Clock(EPOCH_MS + 123_456))
    assert timestamp_ms(generator.next_id()) == EPOCH_MS + 123_456


def test_ids_of_different_workers_differ_in_the_same_millisecond_and_sort_by_time() -> None:
    clock = Clock(EPOCH_MS + 5_000)
    first, second = Snowflake(1, clock_ms=clock), Snowflake(2, clock_ms=clock)
    earlier = {first.next_id(), second.next_id()}
    assert len(earlier) == 2
    clock.now_ms += 1
    later = {first.next_id(), second.next_id()}
    assert min(later) > max(earlier)


def test_a_small_step_back_of_the_clock_does_not_repeat_or_reorder_ids() -> None:
    clock = Clock(EPOCH_MS + 10_000)
    generator = Snowflake(3, clock_ms=clock)
    before = generator.next_id()
    clock.now_ms -= 500
    after = [generator.next_id() for _ in range(100)]
    assert after == sorted(after)
    assert after[0] > before


def test_a_large_step_back_of_the_clock_is_refused() -> None:
    clock = Clock(EPOCH_MS + 10_000)
    generator = Snowflake(3, clock_ms=clock, max_drift_ms=2_000)
    generator.next_id()
    clock.now_ms -= 5_000
    with pytest.raises(ClockMovedBackwards):
        generator.next_id()


@pytest.mark.parametrize("worker_id", [-1, 1024])
def test_worker_id_must_fit_ten_bits(worker_id: int) -> None:
    with pytest.raises(ValueError, match="worker_id"):
        Snowflake(worker_id)
