"""The real-time metrics port on Prometheus: connections, closes by reason (slow consumers among them), frames."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class PrometheusRealtimeMetrics:
    """One set per registry; labels are bounded (transport: ws/grpc; reason: the fixed close reasons)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "tidings_bff_connections",
            "Live client connections of this bff instance, by transport.",
            ["transport"],
            registry=registry,
        )
        self.closes = Counter(
            "tidings_bff_connection_closes",
            "Connections ended, by transport and reason (client_closed, going_away, unauthenticated, "
            "slow_consumer, idle, unroutable).",
            ["transport", "reason"],
            registry=registry,
        )
        self.frames = Counter(
            "tidings_bff_delivered_frames",
            "Events queued on connections' outboxes.",
            registry=registry,
        )
        self.bad_frames = Counter(
            "tidings_bff_bad_frames",
            "Client frames answered with an error because they could not be read, by transport.",
            ["transport"],
            registry=registry,
        )
        self.relay_failures = Counter(
            "tidings_bff_relay_failures",
            "Deliver calls to other bff instances that failed (typing and presence are then lost for them).",
            registry=registry,
        )

    def connected(self, transport: str) -> None:
        self.connections.labels(transport).inc()

    def closed(self, transport: str, reason: str) -> None:
        self.connections.labels(transport).dec()
        self.closes.labels(transport, reason).inc()

    def delivered(self, frames: int) -> None:
        if frames:
            self.frames.inc(frames)

    def bad_frame(self, transport: str) -> None:
        self.bad_frames.labels(transport).inc()

    def relay_failed(self) -> None:
        self.relay_failures.inc()
