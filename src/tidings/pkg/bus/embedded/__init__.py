"""The embedded event bus: a durable SQLite log with Kafka semantics, for ``tidings dev``."""

from tidings.pkg.bus.embedded.log import EmbeddedLog
from tidings.pkg.bus.embedded.subscription import EmbeddedSubscription

__all__ = ["EmbeddedLog", "EmbeddedSubscription"]
