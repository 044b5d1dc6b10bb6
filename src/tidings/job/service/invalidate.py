"""Consumer group ``invalidate`` on ``cache.invalidate``: each batch's keys deleted a second time once their
``not_before`` has passed (``biz.invalidate``)."""

from __future__ import annotations

from tidings.job.biz.invalidate import DelayedDelete, Invalidation
from tidings.pkg.bus import Record, events
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.pkg.pbtime import millis

GROUP = "invalidate"
TOPIC = CACHE_INVALIDATE


class InvalidateHandler:
    def __init__(self, deletes: DelayedDelete) -> None:
        self._deletes = deletes

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all, then delete their keys once ``not_before`` has passed."""
        payloads = [events.decode(TOPIC, record) for record in records]
        await self._deletes.delete([Invalidation(list(p.keys), millis(p.not_before)) for p in payloads])
