"""Sampling: at most N new traces a second, whatever the ratio lets through; the ratio's drops stay drops."""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision

from tidings.pkg.trace import AtMostPerSecond


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sampled(sampler: AtMostPerSecond, count: int) -> int:
    decisions = [sampler.should_sample(None, trace_id, "span").decision for trace_id in range(1, count + 1)]
    return sum(decision is Decision.RECORD_AND_SAMPLE for decision in decisions)


def test_at_most_the_rate_is_sampled_and_the_budget_refills_with_time() -> None:
    clock = Clock()
    sampler = AtMostPerSecond(ALWAYS_ON, 20, clock)
    assert sampled(sampler, 100) == 20
    clock.now += 0.5
    assert sampled(sampler, 100) == 10
    clock.now += 10  # a long quiet time refills a second's worth, not more
    assert sampled(sampler, 100) == 20


def test_what_the_inner_sampler_drops_stays_dropped() -> None:
    assert sampled(AtMostPerSecond(ALWAYS_OFF, 20, Clock()), 10) == 0
