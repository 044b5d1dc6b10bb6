"""The persist job: consumer group ``persist`` writes ``chat.message.sent`` into the database, then Redis.

Each handler call gets a batch (bounded in size and time by ``OrderedConsumer``) of one worker queue, so a
conversation's messages come in log order and only one worker writes a conversation. The batch is stored in one
transaction through chat's data layer: messages inserted unless present (idempotent on ``message_id`` and
``(conversation_id, seq)``, so redelivery after a crash stores nothing twice) and each conversation's ``max_seq``,
``last_message_id`` and ``updated_at_ms`` moved forward only. The consumer commits offsets up to the low
watermark of handled records, so an offset moves only after its transaction committed. Redis (persisted max seq,
recent window) is updated after the commit in one pipeline, best effort: the database is the source of truth.
The conversations' cached heads (max seq, ``updated_at``, read by sync) are invalidated after the commit like any
cache-aside write (delete now, ``cache.invalidate`` again later; redone by ``job/invalidate`` once Redis is back).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import sqlalchemy.exc
from redis.exceptions import RedisError

from tidings.pkg import log
from tidings.pkg.bus import Record, events
from tidings.pkg.cache.ports import ReadThrough
from tidings.pkg.db import DatabaseUnavailable
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.biz.model import Message
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.data.metrics import PersistMetrics
from tidings.service.chat.data.recent import RedisHistoryCache
from tidings.service.chat.pb import message_from_pb

GROUP = "persist"

# A database that is down or restarting, or a batch that ran out of time: retried without end and never
# dead-lettered, because the records are fine (the consumer pauses fetching meanwhile).
TRANSIENT: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    DatabaseUnavailable,
    ConnectionError,
    TimeoutError,
)


class InvalidEvent(ValueError):
    """A ``MessageSent`` whose message lacks what storing it needs: a poison record (dead letter)."""


class PersistJob:
    def __init__(
        self,
        store: SQLMessageRepo,
        cache: RedisHistoryCache | None,
        metrics: PersistMetrics,
        *,
        cache_retry_s: float = 5.0,
        max_stale: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        heads: ReadThrough[int, tuple[int, int]] | None = None,
    ) -> None:
        self._store = store
        self._heads = heads
        self._cache = cache
        self._metrics = metrics
        self._cache_retry_s = cache_retry_s
        self._max_stale = max_stale
        self._clock = clock
        self._log = log.get("job.persist")
        # After a Redis failure the cache is left alone for a while, so persisting does not wait on timeouts.
        self._cache_paused_until = 0.0
        # Conversations whose recent windows missed messages while Redis could not be written.
        self._stale: set[int] = set()

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all, store all in one transaction, then update Redis."""
        batch = [self._decode(record) for record in records]
        await self._store.persist(batch)
        self._metrics.messages.inc(len(batch))
        await asyncio.gather(self._update_cache(batch), self._invalidate_heads(batch))

    async def _invalidate_heads(self, batch: list[Message]) -> None:
        """Never raises: a failed delete is redone by the delayed one."""
        if self._heads is not None and batch:
            touched = sorted({message.conversation_id for message in batch})
            # Keyed by a conversation of the batch, so the delayed deletes spread over the topic's partitions.
            await self._heads.invalidate(touched, entity_id=touched[0])

    @staticmethod
    def _decode(record: Record) -> Message:
        sent = events.decode(chat_topics.MESSAGE_SENT, record)
        message = sent.message
        if not sent.HasField("message") or min(message.id, message.conversation_id, message.seq) <= 0:
            raise InvalidEvent(f"offset {record.offset}: MessageSent without a message id, conversation or seq")
        if str(message.conversation_id).encode() != record.key:
            raise InvalidEvent(f"offset {record.offset}: key {record.key!r} is not the message's conversation")
        return message_from_pb(message)

    async def _update_cache(self, batch: list[Message]) -> None:
        if self._cache is None:
            return
        touched = {message.conversation_id for message in batch}
        if self._clock() < self._cache_paused_until:
            self._mark_stale(touched)
            return
        stale = list(self._stale)
        try:
            await self._cache.record(batch, stale=stale)
        except (RedisError, OSError) as exc:
            self._metrics.cache_failures.inc()
            self._cache_paused_until = self._clock() + self._cache_retry_s
            self._mark_stale(touched)
            self._log.warning("recent window update failed; pausing it", error=repr(exc), retry_s=self._cache_retry_s)
            return
        self._stale.difference_update(stale)

    def _mark_stale(self, conversation_ids: set[int]) -> None:
        if len(self._stale) + len(conversation_ids) > self._max_stale:
            # Past the bound the windows are left to expire by their TTL; say so rather than grow without end.
            self._log.error("too many stale recent windows to track; they expire by TTL", tracked=len(self._stale))
            return
        self._stale |= conversation_ids
