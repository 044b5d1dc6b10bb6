"""The jobs' probes on Prometheus (one set of metrics per registry, labels bounded) and the structured log."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from tidings.pkg import log


class PersistTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._messages = Counter(
            "tidings_persist_messages",
            "Messages the persist job wrote (a redelivered one again, harmlessly).",
            registry=registry,
        )
        self._cache_failures = Counter(
            "tidings_persist_cache_update_failures",
            "Batches whose Redis update (max seq, recent window) failed after the database commit.",
            registry=registry,
        )
        self._log = log.get("job.persist")

    def stored(self, count: int) -> None:
        self._messages.inc(count)

    def window_failed(self, error: Exception, retry_s: float) -> None:
        self._cache_failures.inc()
        self._log.warning("recent window update failed; pausing it", error=repr(error), retry_s=retry_s)

    def too_many_stale(self, tracked: int) -> None:
        self._log.error("too many stale recent windows to track; they expire by TTL", tracked=tracked)


class PushTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._deliveries = Counter(
            "tidings_push_deliveries",
            "Events for one session, by outcome: queued by its bff, gone (session closed; route pruned), "
            "failed (bff unreachable after retries: the device catches up by sync).",
            ["outcome"],
            registry=registry,
        )
        self._deliver_seconds = Histogram(
            "tidings_push_deliver_seconds",
            "Duration of one Deliver call to a bff instance, by result.",
            ["result"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self._retries = Counter(
            "tidings_push_deliver_retries",
            "Deliver calls repeated after a failure.",
            registry=registry,
        )
        self._log = log.get("job.push")

    def delivered(self, outcome: str, count: int) -> None:
        self._deliveries.labels(outcome).inc(count)

    def deliver_took(self, ok: bool, seconds: float) -> None:
        self._deliver_seconds.labels("ok" if ok else "error").observe(seconds)

    def retried(self) -> None:
        self._retries.inc()

    def instance_down(self, instance: str, error: Exception, pause_s: float) -> None:
        self._log.warning(
            "bff instance unreachable; its devices catch up by sync",
            instance=instance,
            error=repr(error)[:200],
            pause_s=pause_s,
        )

    def fan_out_late(self, instances: Sequence[str]) -> None:
        self._log.warning("push fan-out ran out of time; left to sync", instances=list(instances))

    def prune_failed(self, error: Exception, routes: int) -> None:
        self._log.warning("pruning gone routes failed; they expire by TTL", error=repr(error), routes=routes)


class InvalidateTelemetry:
    def __init__(self) -> None:
        self._log = log.get("job.invalidate")

    def far_future(self, wait_s: float) -> None:
        self._log.warning("cache.invalidate far in the future; deleting now", wait_s=wait_s)
