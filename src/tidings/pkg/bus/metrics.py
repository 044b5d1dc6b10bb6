"""Prometheus metrics of the ordered consumer; labels are bounded (topic, partition, group, fixed kinds)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ConsumerMetrics:
    """One set per registry, shared by every consumer of the process (the group is a label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "tidings_bus_consumer_records",
            "Records the ordered consumer finished, by outcome (handled, dead_lettered).",
            ["topic", "group", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "tidings_bus_consumer_dead_letters",
            "Records sent to the dead-letter topic, by reason (handler_error, unknown_version).",
            ["topic", "group", "reason"],
            registry=registry,
        )
        self.batch_duration = Histogram(
            "tidings_bus_consumer_batch_duration_seconds",
            "Time a handler took for one batch, by result (ok, error).",
            ["group", "result"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.lag = Gauge(
            "tidings_bus_consumer_lag",
            "Records between the partition's end and the group's committed offset.",
            ["topic", "partition", "group"],
            registry=registry,
        )
        self.commit_age = Gauge(
            "tidings_bus_consumer_commit_age_seconds",
            "Seconds since the committed offsets last caught up with the handled records.",
            ["group"],
            registry=registry,
        )
        self.paused = Gauge(
            "tidings_bus_consumer_paused",
            "1 while fetching is paused because the worker queues are full (backpressure).",
            ["group"],
            registry=registry,
        )
