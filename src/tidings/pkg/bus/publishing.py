"""What both bus adapters do around a publish: one PRODUCER span per event, carried in its headers."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.pkg import trace
from tidings.pkg.bus.records import Event, Headers, Published


class TracedPublisher:
    """Gives an adapter ``publish``/``publish_many`` with tracing; the adapter writes ``_publish_many``."""

    # ``messaging.system`` of the spans.
    system: str

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Published:
        (published,) = await self.publish_many([Event(topic, key, value, headers)])
        return published

    async def publish_many(self, events: Sequence[Event]) -> list[Published]:
        if not events:
            return []
        # The consumer's span continues from the producer span whose context the headers carry.
        with trace.producing(self.system, events) as producing:
            published = await self._publish_many(producing.events)
            producing.done(published)
        return published

    async def _publish_many(self, events: Sequence[Event]) -> list[Published]:
        raise NotImplementedError
