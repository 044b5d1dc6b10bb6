"""Picks the event bus adapter from configuration: the embedded log for ``tidings dev``, Kafka otherwise."""

from __future__ import annotations

from tidings.pkg.bus.embedded import EmbeddedLog
from tidings.pkg.bus.kafka import KafkaEventBus
from tidings.pkg.bus.ports import EventBus
from tidings.pkg.conf import BusConf


def create_bus(conf: BusConf, *, client_id: str = "tidings") -> EventBus:
    """An unstarted bus for ``conf``; the caller starts it and closes it (it owns connections or a file)."""
    if conf.kind == "kafka":
        return KafkaEventBus(
            conf.bootstrap_servers,
            timeout_s=conf.timeout_s,
            client_id=client_id,
            replication_factor=conf.replication_factor,
            min_insync_replicas=conf.min_insync_replicas,
        )
    return EmbeddedLog(conf.path, timeout_s=conf.timeout_s)
