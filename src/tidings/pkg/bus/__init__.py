"""The event bus port: framework-free records and ``Protocol`` classes that ``biz`` and ``job`` code depend on.

Adapters and machinery live in submodules, imported where they are wired: ``bus.embedded.EmbeddedLog`` (SQLite),
``bus.kafka.KafkaEventBus`` (aiokafka), ``bus.factory.create_bus`` (picks one from ``BusConf``) and
``bus.consumer.OrderedConsumer`` (keys in parallel, each key in order). Importing this package loads none of them.
"""

from tidings.pkg.bus.ports import EventBus, Publisher, RebalanceListener, Subscription
from tidings.pkg.bus.records import (
    BusError,
    CommitFailed,
    Event,
    GroupBusy,
    Headers,
    Published,
    Record,
    TopicConflict,
    TopicPartition,
    TopicSpec,
    UnknownTopic,
)

__all__ = [
    "BusError",
    "CommitFailed",
    "Event",
    "EventBus",
    "GroupBusy",
    "Headers",
    "Published",
    "Publisher",
    "RebalanceListener",
    "Record",
    "Subscription",
    "TopicConflict",
    "TopicPartition",
    "TopicSpec",
    "UnknownTopic",
]
