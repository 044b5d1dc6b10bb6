"""The job's transports: one ``OrderedConsumer`` per group, tuned for its work, and a consumer that owns clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from tidings.job.biz.errors import TRANSIENT
from tidings.pkg.bus import EventBus, events
from tidings.pkg.bus.consumer import ConsumerOptions, Handler, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.search.model import SearchUnavailable

# Two workers, fetches and batches that wait a little for more: a batch costs one transaction (three round trips)
# however many it holds, and a message is still persisted well within the second clients may wait.
PERSIST_OPTIONS = ConsumerOptions(
    workers=2, batch_size=1000, batch_linger_s=0.05, fetch_wait_s=0.02, transient=TRANSIENT
)
# Latency first: batches gathered briefly, as many as came meanwhile; enough workers that one slow bff stalls few
# conversations, few enough that a busy topic makes batches of many (one route lookup, one Deliver each).
PUSH_OPTIONS = ConsumerOptions(workers=8, batch_size=200, batch_linger_s=0.002, transient=TRANSIENT)
# Waiting for not_before holds a worker; many workers keep entities' waits from queuing behind each other. The
# deletes are late by design: fetches may wait for more of them.
INVALIDATE_OPTIONS = ConsumerOptions(workers=16, batch_size=500, fetch_wait_s=0.05, transient=TRANSIENT)
# A bulk request costs about the same for one document as for hundreds: batches wait up to 200 ms for more (the
# index refreshes once a second anyway). A search index that does not answer is retried without end, the
# consumer pausing meanwhile, so the index catches up from the log when it returns.
INDEX_OPTIONS = ConsumerOptions(
    workers=4,
    batch_size=500,
    batch_linger_s=0.2,
    fetch_wait_s=0.05,
    transient=(*TRANSIENT, SearchUnavailable),
)


def consumer(
    bus: EventBus,
    topics: events.Topics,
    group: str,
    topic_names: Sequence[str],
    handler: Handler,
    metrics: ConsumerMetrics,
    options: ConsumerOptions,
) -> OrderedConsumer:
    """The consumer group ``group`` (in the topics' namespace) feeding ``handler``."""
    return OrderedConsumer(
        bus,
        group=f"{topics.prefix}{group}",
        topics=list(topic_names),
        handler=handler,
        metrics=metrics,
        options=options,
    )


class ClosingConsumer:
    """A consumer and a client only it uses (push's Deliver channels): stopping it drains the consumer, then
    closes the client."""

    def __init__(self, consumer: OrderedConsumer, close: Callable[[], Awaitable[None]]) -> None:
        self.consumer = consumer
        self._close = close

    @property
    def name(self) -> str:
        return self.consumer.name

    async def probe(self) -> None:
        await self.consumer.probe()

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self._close()
