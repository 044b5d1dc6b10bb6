"""The live sessions of this bff instance: their routes, their outboxes, presence, and their upkeep.

A session is registered here before its route is written, so a ``Deliver`` that found the route finds the
session. Routes are refreshed by heartbeat (every third of their TTL) and removed on close; routes of a crashed
instance expire, and the sweep (run by every instance, each expired route claimed once) announces the users
that went offline that way. Presence changes go to everyone who shares a conversation with the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Identity, Presence
from tidings.bff.biz.ports import AccountRepo, ChatRepo, RealtimeMetrics, Relay
from tidings.bff.biz.quotas import Quotas
from tidings.bff.biz.realtime.events import Envelope, Event, PresenceChanged, Ready, SessionEnded
from tidings.bff.biz.realtime.membership import Audiences
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.pkg import errors
from tidings.pkg.clock import Clock, SystemClock
from tidings.pkg.logger import Logger
from tidings.pkg.middleware import deadline
from tidings.realtime.model import Route, Routes, RouteTable

# Routes written or refreshed per round trip; presence fan-outs and token checks running at once.
_BATCH = 500
_CONCURRENCY = 16
_SWEEP_LIMIT = 1000


@dataclass(frozen=True)
class RealtimeOptions:
    """What the hub needs of the ``realtime`` settings: ``wire`` builds it from ``RealtimeConf``, which says what
    each one means."""

    queue_size: int
    idle_timeout_s: float
    route_ttl_s: float
    reverify_interval_s: float
    members_cache_s: float
    peers_cache_s: float
    presence_max_peers: int
    presence_push_max_members: int
    io_timeout_s: float


class Hub:
    """Registry of this instance's sessions; a lifecycle component (``start``/``stop``) for their upkeep."""

    name = "bff realtime"

    def __init__(
        self,
        *,
        instance: str,
        options: RealtimeOptions,
        routes: RouteTable,
        relay: Relay,
        accounts: AccountRepo,
        chats: ChatRepo,
        metrics: RealtimeMetrics,
        quotas: Quotas,
        request_timeout_s: float,
        logger: Logger,
        clock: Clock | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        audiences: Audiences | None = None,
    ) -> None:
        self.instance = instance
        self.options = options
        self._routes = routes
        self._relay = relay
        self._accounts = accounts
        self._chats = chats
        self._metrics = metrics
        self._request_timeout_s = request_timeout_s
        self.clock: Clock = clock or SystemClock()
        self._new_id = new_id
        self._sessions: dict[str, Session] = {}
        # Members (typing) and peers (presence): shared by the fleet's instances when given (Redis), else local.
        self.audiences = audiences or Audiences.local(
            options.members_cache_s, options.peers_cache_s, self.clock.monotonic
        )
        # Rate limits per user (typing, sends, connections), shared by the fleet's instances in production.
        self.quotas = quotas
        self._slots = asyncio.Semaphore(_CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()
        # While stopping, closed sessions' routes are collected and removed in batches rather than one by one.
        self._leaving: list[Route] | None = None
        self._loop: asyncio.Task[None] | None = None
        now = self.clock.monotonic()
        self._refresh_at = now + self._heartbeat_s
        self._sweep_at = now + self._heartbeat_s
        self._beaconed = False  # the first beacon finds none: the instance just started
        self._log = logger

    @property
    def _heartbeat_s(self) -> float:
        return self.options.route_ttl_s / 3

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    # Connections -----------------------------------------------------------------------------------------------

    async def admit(self, user_id: int) -> None:
        """Refuse (429) a new connection of a user who has the most open connections allowed, across the fleet
        (counted in the route table); a table that cannot be read admits (the connect then fails on its own)."""
        limit = self.quotas.connections_per_user
        if limit is None:
            return
        try:
            async with self._bounded(self.options.io_timeout_s):
                live = (await self._routes.routes_for([user_id])).get(user_id, {})
        except Exception as exc:
            self._log.warning("route table unavailable; connection admitted", error=repr(exc))
            return
        if len(live) >= limit:
            raise self.quotas.too_many_connections()

    async def connect(self, identity: Identity, token: str, transport: str) -> Session:
        """Register a new connection of ``identity``'s user here and in the route table; ``Ready`` is queued first.

        Raises UNAVAILABLE if the route cannot be written: a connection nobody can deliver to is refused.
        """
        now = self.clock.monotonic()
        session = Session(
            self._new_id(),
            identity.user_id,
            transport=transport,
            token=token,
            expires_at_ms=identity.expires_at_ms,
            queue_size=self.options.queue_size,
            now=now,
            on_close=self._closed,
        )
        # Spread token checks over the interval, so a burst of connections does not re-verify in one burst.
        session.verify_at = now + self.options.reverify_interval_s * random.uniform(0.5, 1.0)  # noqa: S311
        session.offer(Ready(session.id))
        self._sessions[session.id] = session
        self._metrics.connected(transport)
        route = Route(session.user_id, session.id, self.instance)
        try:
            async with self._bounded(self.options.io_timeout_s):
                came_online = await self._routes.touch([route])
        except Exception as exc:
            session.close(CloseReason.UNROUTABLE)
            self._log.warning("route not written; connection refused", error=repr(exc))
            raise common_errors.unavailable("cannot register the connection now; retry shortly") from exc
        if session.closed:
            # Closed while its route was written (the hub is stopping): its removal may have run first.
            self._spawn(self._unroute([route]))
        self._announce(came_online, Presence.ONLINE)
        return session

    def disconnect(self, session: Session, reason: CloseReason = CloseReason.CLIENT_CLOSED) -> None:
        """End ``session`` (idempotent); its route is removed in the background."""
        session.close(reason)

    def _closed(self, session: Session) -> None:
        """Every close ends here once: forget the session, count why, remove its route, maybe announce offline."""
        if self._sessions.pop(session.id, None) is None:
            return
        self._metrics.closed(session.transport, str(session.reason))
        route = Route(session.user_id, session.id, self.instance)
        if self._leaving is not None:
            self._leaving.append(route)
        else:
            self._spawn(self._unroute([route]))

    async def _unroute(self, routes: Sequence[Route]) -> None:
        for start in range(0, len(routes), _BATCH):
            async with self._bounded(self.options.io_timeout_s):
                went_offline = await self._routes.remove(routes[start : start + _BATCH])
            self._announce(went_offline, Presence.OFFLINE)

    # Delivery --------------------------------------------------------------------------------------------------

    def deliver(self, session_ids: Iterable[str], envelope: Envelope) -> list[str]:
        """Queue ``envelope`` on each session without waiting; the ids not connected here (or just closed)."""
        gone = []
        delivered = 0
        queue = self._ender(envelope) if isinstance(envelope.event, SessionEnded) else Session.offer
        for session_id in session_ids:
            session = self._sessions.get(session_id)
            if session is not None and queue(session, envelope):
                delivered += 1
            else:
                gone.append(session_id)
        self._metrics.delivered(delivered)
        return gone

    def _ender(self, envelope: Envelope) -> Callable[[Session, Envelope], bool]:
        """How ``session.ended`` is queued: as the session's last frame, then the session closes (banned or
        revoked); one that cannot write it within the I/O bound is closed anyway."""
        assert isinstance(envelope.event, SessionEnded)
        reason = CloseReason.BANNED if envelope.event.banned else CloseReason.REVOKED

        def end(session: Session, last: Envelope) -> bool:
            if not session.end(last, reason):
                return False
            self._spawn(self._close_late(session, reason))
            return True

        return end

    async def _close_late(self, session: Session, reason: CloseReason) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.options.io_timeout_s):
                await session.wait_closed()
        session.close(reason)

    async def fan_out(self, event: Event, routes: Routes) -> None:
        """Hand ``event`` to every routed session: this instance's directly, each other instance in one ``Deliver``
        call (concurrently, under the I/O bound). Routes found gone are pruned; failures are counted, not raised:
        these events are ephemeral and sync repairs the rest."""
        by_instance: dict[str, list[str]] = {}
        owner: dict[str, int] = {}
        for user_id, sessions in routes.items():
            for session_id, instance in sessions.items():
                by_instance.setdefault(instance, []).append(session_id)
                owner[session_id] = user_id
        if not by_instance:
            return
        gone = self.deliver(by_instance.pop(self.instance, []), Envelope(event))
        if by_instance:
            async with asyncio.TaskGroup() as group:
                calls = [
                    group.create_task(self._relay_to(instance, [(ids, event)])) for instance, ids in by_instance.items()
                ]
            gone += [session_id for call in calls for session_id in call.result()]
        if gone:
            with contextlib.suppress(Exception):
                async with self._bounded(self.options.io_timeout_s):
                    await self._routes.remove([Route(owner[s], s, "") for s in gone if s in owner])

    async def _relay_to(self, instance: str, deliveries: Sequence[tuple[Sequence[str], Event]]) -> list[str]:
        try:
            async with self._bounded(self.options.io_timeout_s):
                return await self._relay.deliver(instance, deliveries)
        except Exception as exc:
            self._metrics.relay_failed()
            self._log.warning("deliver to another instance failed", instance=instance, error=repr(exc))
            return []

    async def deliver_to_users(self, event: Event, user_ids: Iterable[int]) -> None:
        """``fan_out`` to every live session of ``user_ids``, wherever they are connected."""
        async with self._bounded(self.options.io_timeout_s):
            routes = await self._routes.routes_for(user_ids)
        await self.fan_out(event, routes)

    # Presence --------------------------------------------------------------------------------------------------

    def _announce(self, user_ids: Sequence[int], status: Presence) -> None:
        for user_id in user_ids:
            self._spawn(self._announce_one(user_id, status))

    async def _announce_one(self, user_id: int, status: Presence) -> None:
        async with self._slots:
            peers = await self._peers_of(user_id)
            if peers:
                await self.deliver_to_users(PresenceChanged(user_id, status), peers)

    async def _peers_of(self, user_id: int) -> tuple[int, ...]:
        """Everyone who shares a direct chat or a group of at most ``presence_push_max_members`` with ``user_id``
        (capped), cached briefly: who is told when they come online or go offline."""
        small = self.options.presence_push_max_members

        async def load(user: int) -> tuple[int, ...]:
            async with self._bounded(self._request_timeout_s):
                conversations = await self._chats.for_user(user)
            found = dict.fromkeys(
                m for conv in conversations if len(conv.member_ids) <= small for m in conv.member_ids if m != user
            )
            return tuple(found)[: self.options.presence_max_peers]

        return await self.audiences.peers.get(user_id, load) or ()

    # Upkeep ----------------------------------------------------------------------------------------------------

    async def tick(self) -> None:
        """One round of upkeep: close idle and expired sessions, refresh routes and sweep expired ones when due,
        re-verify the tokens that are due. The loop runs it every second; tests call it with a fake clock."""
        now = self.clock.monotonic()
        now_ms = self.clock.now_ms()
        for session in self.sessions():
            if session.last_seen + self.options.idle_timeout_s <= now:
                session.close(CloseReason.IDLE)
            elif session.expires_at_ms <= now_ms:
                session.close(CloseReason.UNAUTHENTICATED)
        await self._guarded("route beacon", self._beacon())
        if now >= self._refresh_at:
            self._refresh_at = now + self._heartbeat_s
            await self._guarded("route refresh", self._refresh())
        if now >= self._sweep_at:
            self._sweep_at = now + self._heartbeat_s
            await self._guarded("route sweep", self._sweep())
        due = [session for session in self.sessions() if session.verify_at <= now]
        if due:
            async with asyncio.TaskGroup() as group:
                for session in due:
                    group.create_task(self._reverify(session, now))

    async def _refresh(self) -> None:
        live = [Route(s.user_id, s.id, self.instance) for s in self.sessions()]
        for start in range(0, len(live), _BATCH):
            async with self._bounded(self.options.io_timeout_s):
                # A route that expired meanwhile (a stall) comes back, and its user is online again.
                self._announce(await self._routes.touch(live[start : start + _BATCH]), Presence.ONLINE)

    async def _beacon(self) -> None:
        """Each second: did the route table lose this instance's routes (Redis flushed, or back empty)? Messages
        pushed meanwhile found no route to its connections, and nothing tells which: every connection is closed
        as unroutable, so that its client connects again and catches up from history, as after a restart."""
        async with self._bounded(self.options.io_timeout_s):
            kept = await self._routes.beacon(self.instance)
        if not kept and self._beaconed and self._sessions:
            self._log.warning(
                "the route table lost this instance's routes; connections closed", count=len(self._sessions)
            )
            for session in self.sessions():
                session.close(CloseReason.UNROUTABLE)
        self._beaconed = True

    async def _sweep(self) -> None:
        async with self._bounded(self.options.io_timeout_s):
            self._announce(await self._routes.sweep(_SWEEP_LIMIT), Presence.OFFLINE)

    async def _reverify(self, session: Session, now: float) -> None:
        """Check the token again (revocation); a refused one closes the session, an unreachable account retries."""
        session.verify_at = now + self.options.reverify_interval_s
        async with self._slots:
            try:
                async with self._bounded(self.options.io_timeout_s):
                    identity = await self._accounts.identify(session.token)
            except errors.TidingsError as error:
                if error.code in (401, 403):  # expired, revoked, or the user banned
                    session.close(CloseReason.UNAUTHENTICATED)
                    return
                session.verify_at = now + self.options.reverify_interval_s / 4
                self._log.warning("token re-verification failed; retrying", error=repr(error))
                return
            except Exception as exc:  # the account service unreachable, too slow, or failing
                session.verify_at = now + self.options.reverify_interval_s / 4
                self._log.warning("token re-verification failed; retrying", error=repr(exc))
                return
        if identity.user_id != session.user_id:
            session.close(CloseReason.UNAUTHENTICATED)
        else:
            session.expires_at_ms = identity.expires_at_ms

    # Lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="bff realtime upkeep")

    async def _run(self) -> None:
        period = min(1.0, self.options.idle_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            await self._guarded("upkeep", self.tick())

    async def stop(self) -> None:
        """Close every connection (going away: clients reconnect to another instance), remove their routes in one
        batch, and wait for the work in flight, bounded."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        self._leaving = []
        for session in self.sessions():
            session.close(CloseReason.GOING_AWAY)
        leaving, self._leaving = self._leaving, None
        await self._guarded("route removal", self._unroute(leaving))
        await self.drain()
        await self._relay.close()

    async def drain(self) -> None:
        """Wait for background work (route removals, presence fan-out), at most twice the I/O bound."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=2 * self.options.io_timeout_s)
            for task in pending:
                task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded("background", work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, what: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work``; a failure is logged, never raised: upkeep and fan-out must outlive a dependency's fault."""
        try:
            await work
        except Exception as exc:
            self._log.warning(f"{what} failed", error=repr(exc))

    @asynccontextmanager
    async def _bounded(self, timeout_s: float) -> AsyncIterator[None]:
        """Calls made inside carry ``timeout_s`` as their deadline and are cancelled when it passes."""
        with deadline.scope(timeout_s):
            async with asyncio.timeout(timeout_s):
                yield
