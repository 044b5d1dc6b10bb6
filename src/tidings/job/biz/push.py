"""Push: chat's events handed to the online devices of the users concerned, and account's control events (a user's
sessions ended) to that user's devices.

For a batch (one worker queue: a conversation's events in log order) the use case reads the recipients
(conversation members), looks their sessions up in the route table in one round trip, groups the sessions by bff
instance and makes one ``Deliver`` call per instance (goim style: never a broadcast to every instance). The calls of
a batch run in parallel (one per instance), and ``push`` returns only once all are done, so a conversation has at
most one call in flight per instance and a device gets its events in seq order. A failing instance is retried a
bounded number of times, then left alone for a moment: its devices catch up by sync (counted). Sessions an instance
reports gone are pruned.

The event itself (``E``) is what the gateway carries; this module never looks inside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from tidings.job.biz.errors import Unavailable
from tidings.pkg.errors import TidingsError
from tidings.realtime.model import Route

E = TypeVar("E")

# The ``Deliver`` contract's bounds (delivery.proto): larger batches are split, in order.
MAX_DELIVERIES = 1000
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Audience:
    """Who is in a conversation now: the active members, and whether it is a direct (two-person) chat."""

    direct: bool
    member_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class Push(Generic[E]):
    """One event to push: to every member (``reader == 0``) and ``also``, else to the reader and a direct chat's
    peer; or, with no conversation, to the sessions of ``user_id`` alone (``to_user``)."""

    conversation_id: int
    event: E
    reader: int = 0
    also: int = 0
    user_id: int = 0

    @classmethod
    def to_user(cls, user_id: int, event: E) -> Push[E]:
        """``event`` for every live session of ``user_id``, whatever their conversations."""
        return cls(0, event, user_id=user_id)


@dataclass(frozen=True, slots=True)
class Delivery(Generic[E]):
    """One event for some sessions of one instance."""

    session_ids: Sequence[str]
    event: E


class Membership(Protocol):
    async def audiences(self, conversation_ids: Sequence[int]) -> dict[int, Audience]:
        """The audience of each conversation that exists; unknown ids are left out."""
        ...


class RouteLookup(Protocol):
    async def routes_for(self, user_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        """Each online user's sessions (session id -> bff instance)."""
        ...

    async def remove(self, routes: Sequence[Route]) -> list[int]: ...


class Deliverer(Protocol[E]):
    async def deliver(self, instance: str, deliveries: Sequence[Delivery[E]]) -> list[str]:
        """Hand ``deliveries`` to ``instance`` in one call; the session ids it no longer holds. A refused call
        raises a ``TidingsError`` of a 4XX code; any other failure may pass on a retry."""
        ...


class PushProbe(Protocol):
    """What pushing reports: counts for the metrics, and the events an operator should see."""

    def delivered(self, outcome: str, count: int) -> None:
        """Session events by outcome: ``queued``, ``gone`` (session closed) or ``failed`` (left to sync)."""
        ...

    def deliver_took(self, ok: bool, seconds: float) -> None: ...

    def retried(self) -> None: ...

    def instance_down(self, instance: str, error: Exception, pause_s: float) -> None: ...

    def fan_out_late(self, instances: Sequence[str]) -> None: ...

    def prune_failed(self, error: Exception, routes: int) -> None: ...


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


@dataclass(slots=True)
class _Outbox(Generic[E]):
    """What one instance gets in one batch, in event order, and whose sessions they are (for pruning)."""

    deliveries: list[Delivery[E]] = field(default_factory=list)
    owners: dict[str, int] = field(default_factory=dict)


class Pusher(Generic[E]):
    def __init__(
        self,
        membership: Membership,
        routes: RouteLookup,
        deliverer: Deliverer[E],
        probe: PushProbe,
        *,
        options: PushOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._membership = membership
        self._routes = routes
        self._deliverer = deliverer
        self._probe = probe
        self._options = options or PushOptions()
        self._clock = clock
        self._sleep = sleep
        self._down_until: dict[str, float] = {}

    async def push(self, pushes: Sequence[Push[E]]) -> None:
        """Find recipients and sessions of the whole batch, then one Deliver per instance."""
        conversation_ids = [push.conversation_id for push in pushes if push.conversation_id]
        audiences = await self._membership.audiences(conversation_ids) if conversation_ids else {}
        recipients = [_recipients(push, audiences.get(push.conversation_id)) for push in pushes]
        routes = await self._routes.routes_for({user for users in recipients for user in users})
        outboxes = _group_by_instance(pushes, recipients, routes)
        if outboxes:
            gone = await self._fan_out(outboxes)
            await self._prune(gone)

    async def _fan_out(self, outboxes: dict[str, _Outbox[E]]) -> list[Route]:
        """Every instance's outbox at once (bounded by ``fanout`` and ``deadline_s``); the gone sessions."""
        answers: dict[str, list[str]] = {}
        limit = asyncio.Semaphore(self._options.fanout)

        async def one(instance: str, outbox: _Outbox[E]) -> None:
            async with limit:
                answers[instance] = await self._send_outbox(instance, outbox)

        try:
            async with asyncio.timeout(self._options.deadline_s), asyncio.TaskGroup() as group:
                for instance, outbox in outboxes.items():
                    group.create_task(one(instance, outbox))
        except TimeoutError:
            late = [instance for instance in outboxes if instance not in answers]
            for instance in late:
                self._probe.delivered("failed", _session_events(outboxes[instance].deliveries))
            self._probe.fan_out_late(late)
        return [
            Route(outboxes[instance].owners[session], session, instance)
            for instance, sessions in answers.items()
            for session in sessions
            if session in outboxes[instance].owners
        ]

    async def _send_outbox(self, instance: str, outbox: _Outbox[E]) -> list[str]:
        """The outbox in as few calls as the contract allows, one after another (order); the gone sessions."""
        gone: list[str] = []
        for start in range(0, len(outbox.deliveries), MAX_DELIVERIES):
            deliveries = outbox.deliveries[start : start + MAX_DELIVERIES]
            answer = await self._send(instance, deliveries)
            if answer is None:
                self._probe.delivered("failed", _session_events(deliveries))
                continue
            gone_here = set(answer)
            queued = sum(1 for d in deliveries for session in d.session_ids if session not in gone_here)
            self._probe.delivered("queued", queued)
            self._probe.delivered("gone", _session_events(deliveries) - queued)
            gone.extend(answer)
        return gone

    async def _send(self, instance: str, deliveries: Sequence[Delivery[E]]) -> list[str] | None:
        """One Deliver with bounded retries; the gone session ids, or ``None`` when the instance failed."""
        if self._down_until.get(instance, 0.0) > self._clock():
            return None
        for attempt in range(1, self._options.attempts + 1):
            started = time.perf_counter()
            try:
                gone = await self._deliverer.deliver(instance, deliveries)
            except Exception as exc:  # any failure of one instance stays with that instance
                self._probe.deliver_took(False, time.perf_counter() - started)
                if not _retriable(exc) or attempt == self._options.attempts:
                    self._mark_down(instance, exc)
                    return None
                self._probe.retried()
                await self._sleep(self._options.backoff_s * 2 ** (attempt - 1))
                continue
            self._probe.deliver_took(True, time.perf_counter() - started)
            self._down_until.pop(instance, None)
            return gone
        return None

    def _mark_down(self, instance: str, error: Exception) -> None:
        now = self._clock()
        # Instances come and go with deploys: forget the ones whose pause is over, so the map stays small.
        self._down_until = {name: until for name, until in self._down_until.items() if until > now}
        self._down_until[instance] = now + self._options.down_s
        self._probe.instance_down(instance, error, self._options.down_s)

    async def _prune(self, gone: Sequence[Route]) -> None:
        """Drop routes of sessions their instance no longer holds; best effort (they also expire by TTL)."""
        if not gone:
            return
        try:
            await self._routes.remove(gone)
        except (Unavailable, TimeoutError) as exc:
            self._probe.prune_failed(exc, len(gone))


def _retriable(error: Exception) -> bool:
    """A refused request (4XX: a bug or a contract mismatch) fails the same way again; anything else may pass."""
    return not (isinstance(error, TidingsError) and 400 <= error.code < 500)


def _session_events(deliveries: Iterable[Delivery[E]]) -> int:
    return sum(len(delivery.session_ids) for delivery in deliveries)


def _recipients(push: Push[E], audience: Audience | None) -> list[int]:
    """Everyone for messages and recalls; for a read mark, the reader's devices and a direct chat's peer
    (group members are not told who read what: that would be a broadcast per read); for a user's own event, theirs."""
    if push.user_id:
        return [push.user_id]
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
    pushes: Sequence[Push[E]], recipients: Sequence[Sequence[int]], routes: dict[int, dict[str, str]]
) -> dict[str, _Outbox[E]]:
    """Per instance, one delivery per event naming that instance's sessions of the event's recipients."""
    outboxes: dict[str, _Outbox[E]] = {}
    for push, users in zip(pushes, recipients, strict=True):
        sessions: dict[str, list[str]] = {}
        for user in users:
            for session, instance in routes.get(user, {}).items():
                sessions.setdefault(instance, []).append(session)
                outboxes.setdefault(instance, _Outbox()).owners[session] = user
        for instance, session_ids in sessions.items():
            outbox = outboxes[instance]
            for start in range(0, len(session_ids), MAX_SESSIONS):
                outbox.deliveries.append(Delivery(session_ids[start : start + MAX_SESSIONS], push.event))
    return outboxes
