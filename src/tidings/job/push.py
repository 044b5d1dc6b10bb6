"""The push job: consumer group ``push`` hands chat's events to the online devices of the users concerned.

Each handler call gets a batch of one worker queue (``OrderedConsumer``: a conversation's events in log order, one
worker per conversation). For the batch the job reads the recipients (conversation members, cached briefly), looks
their sessions up in the route table in one pipelined round trip, groups the sessions by bff instance and makes one
``Deliver`` call per instance (goim style: never a broadcast to every instance). The calls of a batch run in parallel
(one per instance), and the handler returns only once all are done, so a conversation has at most one call in flight
per instance and a device gets its events in seq order. A failing instance is retried a bounded number of times,
then left alone for a moment: its devices catch up by sync (counted). Sessions an instance reports gone are pruned.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy.exc
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError

from tidings.api.chat.v1 import events_pb2 as chat_events
from tidings.api.gateway.v1 import delivery_pb2, gateway_pb2
from tidings.pkg import log
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import UnknownEventVersion
from tidings.pkg.db import DatabaseUnavailable
from tidings.pkg.errors import TidingsError
from tidings.realtime.model import Route, RouteTable
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.biz.model import Kind

GROUP = "push"
TOPICS = (chat_topics.MESSAGE_SENT, chat_topics.MESSAGE_RECALLED, chat_topics.CONVERSATION_READ)

# The world is down (database, Redis), not the record bad: retried without end, never dead-lettered; delivering
# late beats not delivering, and the consumer pauses fetching meanwhile. A failing bff never raises (see _send).
TRANSIENT: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    DatabaseUnavailable,
    RedisError,
    ConnectionError,
    TimeoutError,
)

# The ``DeliverRequest`` contract's bounds (delivery.proto): larger batches are split, in order.
MAX_DELIVERIES = 1000
MAX_SESSIONS = 10_000


class InvalidEvent(ValueError):
    """An event without the conversation it belongs to: a poison record (dead letter)."""


# -- ports ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audience:
    """Who is in a conversation now: the active members, and whether it is a direct (two-person) chat."""

    direct: bool
    member_ids: frozenset[int]


class Membership(Protocol):
    async def audiences(self, conversation_ids: Sequence[int]) -> dict[int, Audience]:
        """The audience of each conversation that exists; unknown ids are left out."""
        ...


class Deliverer(Protocol):
    async def deliver(self, instance: str, request: delivery_pb2.DeliverRequest) -> delivery_pb2.DeliverResponse: ...


class ConversationSource(Protocol):
    """What ``CachedMembership`` reads: chat's conversation repository (``SQLConversationRepo``)."""

    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> Mapping[int, tuple[Kind, Sequence[int]]]:
        """Each existing conversation's kind and active member ids; unknown ids are left out."""
        ...


# -- membership -------------------------------------------------------------------------------------------------


class CachedMembership:
    """Audiences read through chat's data layer, one query per batch of misses, cached for ``ttl_s``.

    The cache holds at most ``max_members`` member ids in all (least recently used out first), so a few huge
    groups cannot grow it without bound. A join or leave reaches push within ``ttl_s``; a message missed meanwhile
    is in history (sync), and a departed member hears at most ``ttl_s`` more.
    """

    def __init__(
        self,
        conversations: ConversationSource,
        *,
        ttl_s: float = 2.0,
        max_members: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conversations = conversations
        self._ttl_s = ttl_s
        self._max_members = max_members
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, Audience]] = OrderedDict()
        self._size = 0

    async def audiences(self, conversation_ids: Sequence[int]) -> dict[int, Audience]:
        now = self._clock()
        found: dict[int, Audience] = {}
        missing: list[int] = []
        for conversation_id in dict.fromkeys(conversation_ids):
            entry = self._entries.get(conversation_id)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(conversation_id)
                found[conversation_id] = entry[1]
            else:
                missing.append(conversation_id)
        if missing:
            for conversation_id, (kind, member_ids) in (await self._conversations.kinds_and_members(missing)).items():
                audience = Audience(kind == Kind.DIRECT, frozenset(member_ids))
                found[conversation_id] = audience
                self._put(conversation_id, now + self._ttl_s, audience)
        return found

    def _put(self, conversation_id: int, expires_at: float, audience: Audience) -> None:
        old = self._entries.pop(conversation_id, None)
        if old is not None:
            self._size -= len(old[1].member_ids)
        if len(audience.member_ids) > self._max_members:
            return  # bigger than the whole cache: read every time rather than evict everything
        self._entries[conversation_id] = (expires_at, audience)
        self._size += len(audience.member_ids)
        while self._size > self._max_members:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._size -= len(evicted.member_ids)


# -- metrics ----------------------------------------------------------------------------------------------------


class PushMetrics:
    """One set per registry (the process's, or a test's own); labels bounded."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "tidings_push_deliveries",
            "Events for one session, by outcome: queued by its bff, gone (session closed; route pruned), "
            "failed (bff unreachable after retries: the device catches up by sync).",
            ["outcome"],
            registry=registry,
        )
        self.deliver_seconds = Histogram(
            "tidings_push_deliver_seconds",
            "Duration of one Deliver call to a bff instance, by result.",
            ["result"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.retries = Counter(
            "tidings_push_deliver_retries",
            "Deliver calls repeated after a failure.",
            registry=registry,
        )


# -- the job ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushOptions:
    # Attempts of one Deliver call before the instance's devices are left to sync; backoff doubles from this.
    attempts: int = 3
    backoff_s: float = 0.05
    # After the attempts are spent, the instance is skipped (counted failed) this long: a crashed bff's routes
    # live until their TTL, and waiting on it for every batch would stall every conversation of the worker.
    down_s: float = 2.0
    # Instances called at once for one batch, and the bound on the whole batch's fan-out.
    fanout: int = 32
    deadline_s: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.fanout < 1:
            raise ValueError("PushOptions.attempts and fanout must be >= 1")


@dataclass(frozen=True, slots=True)
class _Push:
    """One event to push: to every member (``reader == 0``), else to the reader and a direct chat's peer."""

    conversation_id: int
    event: gateway_pb2.Event
    reader: int = 0
    also: int = 0


@dataclass(slots=True)
class _Outbox:
    """What one instance gets in one batch, in event order, and whose sessions they are (for pruning)."""

    deliveries: list[delivery_pb2.Delivery] = field(default_factory=list)
    owners: dict[str, int] = field(default_factory=dict)


class PushJob:
    def __init__(
        self,
        membership: Membership,
        routes: RouteTable,
        deliverer: Deliverer,
        metrics: PushMetrics,
        *,
        topics: events.Topics | None = None,
        options: PushOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._membership = membership
        self._routes = routes
        self._deliverer = deliverer
        self._metrics = metrics
        self._topics = topics or events.Topics()
        self._options = options or PushOptions()
        self._clock = clock
        self._sleep = sleep
        self._log = log.get("job.push")
        self._down_until: dict[str, float] = {}
        self._decoders: dict[str, Callable[[Record], _Push]] = {
            self._topics.name(chat_topics.MESSAGE_SENT): _message_new,
            self._topics.name(chat_topics.MESSAGE_RECALLED): _message_recalled,
            self._topics.name(chat_topics.CONVERSATION_READ): _conversation_read,
        }

    @property
    def topic_names(self) -> list[str]:
        return list(self._decoders)

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all, find recipients and sessions, one Deliver per instance."""
        pushes = [self._decode(record) for record in records]
        audiences = await self._membership.audiences([push.conversation_id for push in pushes])
        recipients = [_recipients(push, audiences.get(push.conversation_id)) for push in pushes]
        routes = await self._routes.routes_for({user for users in recipients for user in users})
        outboxes = _group_by_instance(pushes, recipients, routes)
        if outboxes:
            gone = await self._fan_out(outboxes)
            await self._prune(gone)

    def _decode(self, record: Record) -> _Push:
        decoder = self._decoders.get(record.topic)
        if decoder is None:
            raise UnknownEventVersion(record, f"push does not consume topic {record.topic!r}")
        push = decoder(record)
        if push.conversation_id <= 0:
            raise InvalidEvent(f"{record.topic} offset {record.offset}: no conversation id")
        return push

    async def _fan_out(self, outboxes: dict[str, _Outbox]) -> list[Route]:
        """Every instance's outbox at once (bounded by ``fanout`` and ``deadline_s``); the gone sessions."""
        answers: dict[str, list[str]] = {}
        limit = asyncio.Semaphore(self._options.fanout)

        async def one(instance: str, outbox: _Outbox) -> None:
            async with limit:
                answers[instance] = await self._send_outbox(instance, outbox)

        try:
            async with asyncio.timeout(self._options.deadline_s), asyncio.TaskGroup() as group:
                for instance, outbox in outboxes.items():
                    group.create_task(one(instance, outbox))
        except TimeoutError:
            late = [instance for instance in outboxes if instance not in answers]
            for instance in late:
                self._metrics.deliveries.labels("failed").inc(_session_events(outboxes[instance].deliveries))
            self._log.warning("push fan-out ran out of time; left to sync", instances=late)
        return [
            Route(outboxes[instance].owners[session], session, instance)
            for instance, sessions in answers.items()
            for session in sessions
            if session in outboxes[instance].owners
        ]

    async def _send_outbox(self, instance: str, outbox: _Outbox) -> list[str]:
        """The outbox in as few calls as the contract allows, one after another (order); the gone sessions."""
        gone: list[str] = []
        for start in range(0, len(outbox.deliveries), MAX_DELIVERIES):
            deliveries = outbox.deliveries[start : start + MAX_DELIVERIES]
            answer = await self._send(instance, delivery_pb2.DeliverRequest(deliveries=deliveries))
            if answer is None:
                self._metrics.deliveries.labels("failed").inc(_session_events(deliveries))
                continue
            gone_here = set(answer)
            queued = sum(1 for d in deliveries for session in d.session_ids if session not in gone_here)
            self._metrics.deliveries.labels("queued").inc(queued)
            self._metrics.deliveries.labels("gone").inc(_session_events(deliveries) - queued)
            gone.extend(answer)
        return gone

    async def _send(self, instance: str, request: delivery_pb2.DeliverRequest) -> list[str] | None:
        """One Deliver with bounded retries; the gone session ids, or ``None`` when the instance failed."""
        if self._down_until.get(instance, 0.0) > self._clock():
            return None
        for attempt in range(1, self._options.attempts + 1):
            started = time.perf_counter()
            try:
                response = await self._deliverer.deliver(instance, request)
            except Exception as exc:  # any failure of one instance stays with that instance
                self._metrics.deliver_seconds.labels("error").observe(time.perf_counter() - started)
                if not _retriable(exc) or attempt == self._options.attempts:
                    self._mark_down(instance, exc)
                    return None
                self._metrics.retries.inc()
                await self._sleep(self._options.backoff_s * 2 ** (attempt - 1))
                continue
            self._metrics.deliver_seconds.labels("ok").observe(time.perf_counter() - started)
            self._down_until.pop(instance, None)
            return list(response.gone_session_ids)
        return None

    def _mark_down(self, instance: str, error: Exception) -> None:
        now = self._clock()
        # Instances come and go with deploys: forget the ones whose pause is over, so the map stays small.
        self._down_until = {name: until for name, until in self._down_until.items() if until > now}
        self._down_until[instance] = now + self._options.down_s
        self._log.warning(
            "bff instance unreachable; its devices catch up by sync",
            instance=instance,
            error=repr(error)[:200],
            pause_s=self._options.down_s,
        )

    async def _prune(self, gone: Sequence[Route]) -> None:
        """Drop routes of sessions their instance no longer holds; best effort (they also expire by TTL)."""
        if not gone:
            return
        try:
            await self._routes.remove(gone)
        except (RedisError, OSError, TimeoutError) as exc:
            self._log.warning("pruning gone routes failed; they expire by TTL", error=repr(exc), routes=len(gone))


def _retriable(error: Exception) -> bool:
    """A refused request (4XX: a bug or a contract mismatch) fails the same way again; anything else may pass."""
    return not (isinstance(error, TidingsError) and 400 <= error.code < 500)


def _session_events(deliveries: Iterable[delivery_pb2.Delivery]) -> int:
    return sum(len(delivery.session_ids) for delivery in deliveries)


def _message_new(record: Record) -> _Push:
    message = events.decode(chat_topics.MESSAGE_SENT, record).message
    # The sender's other devices show it too (and the sending one drops it by message id).
    event = gateway_pb2.Event(message_new=gateway_pb2.MessageNew(message=message))
    return _Push(message.conversation_id, event, also=message.sender_id)


def _message_recalled(record: Record) -> _Push:
    recalled: chat_events.MessageRecalled = events.decode(chat_topics.MESSAGE_RECALLED, record)
    event = gateway_pb2.MessageRecalled(
        conversation_id=recalled.conversation_id, message_id=recalled.message_id, seq=recalled.seq
    )
    return _Push(recalled.conversation_id, gateway_pb2.Event(message_recalled=event))


def _conversation_read(record: Record) -> _Push:
    read: chat_events.ConversationRead = events.decode(chat_topics.CONVERSATION_READ, record)
    event = gateway_pb2.ConversationRead(conversation_id=read.conversation_id, user_id=read.user_id, seq=read.seq)
    return _Push(read.conversation_id, gateway_pb2.Event(conversation_read=event), reader=read.user_id)


def _recipients(push: _Push, audience: Audience | None) -> list[int]:
    """Everyone for messages and recalls; for a read mark, the reader's devices and a direct chat's peer
    (group members are not told who read what: that would be a broadcast per read)."""
    if audience is None:
        return []
    if not push.reader:
        users = set(audience.member_ids)
        if push.also:
            users.add(push.also)
        return sorted(users)
    if push.reader not in audience.member_ids:
        return []
    peers = sorted(audience.member_ids - {push.reader}) if audience.direct else []
    return [push.reader, *peers]


def _group_by_instance(
    pushes: Sequence[_Push], recipients: Sequence[Sequence[int]], routes: dict[int, dict[str, str]]
) -> dict[str, _Outbox]:
    """Per instance, one delivery per event naming that instance's sessions of the event's recipients."""
    outboxes: dict[str, _Outbox] = {}
    for push, users in zip(pushes, recipients, strict=True):
        sessions: dict[str, list[str]] = {}
        for user in users:
            for session, instance in routes.get(user, {}).items():
                sessions.setdefault(instance, []).append(session)
                outboxes.setdefault(instance, _Outbox()).owners[session] = user
        for instance, session_ids in sessions.items():
            outbox = outboxes[instance]
            for start in range(0, len(session_ids), MAX_SESSIONS):
                chunk = session_ids[start : start + MAX_SESSIONS]
                outbox.deliveries.append(delivery_pb2.Delivery(session_ids=chunk, event=push.event))
    return outboxes
