"""One live connection (a session: one device of one user) and its bounded outbox.

Everything the server sends on a connection goes through its outbox, written by one writer (the transport), so
frames keep their order. The outbox never grows past its bound: a connection that cannot keep up is closed
(``SLOW_CONSUMER``) and its client catches up by sync after reconnecting.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from enum import StrEnum
from typing import Generic, TypeVar

from tidings.bff.biz.realtime.events import Outbound


class CloseReason(StrEnum):
    """Why the server (or the client) ended a connection; each transport maps it to a close code or status."""

    CLIENT_CLOSED = "client_closed"
    GOING_AWAY = "going_away"
    UNAUTHENTICATED = "unauthenticated"
    SLOW_CONSUMER = "slow_consumer"
    IDLE = "idle"
    # The route could not be written when it connected, or the route table lost it: nobody could deliver to it.
    UNROUTABLE = "unroutable"
    # The user's tokens were revoked (logged out everywhere, password reset) or the user banned: ``session.ended``
    # was the last frame.
    REVOKED = "revoked"
    BANNED = "banned"


class Session:
    """A connection's identity, outbox and liveness; ``close`` is final and reported once to ``on_close``."""

    def __init__(
        self,
        session_id: str,
        user_id: int,
        *,
        transport: str,
        token: str,
        expires_at_ms: int,
        queue_size: int,
        now: float,
        on_close: Callable[[Session], None],
    ) -> None:
        self.id = session_id
        self.user_id = user_id
        self.transport = transport
        self.token = token
        self.expires_at_ms = expires_at_ms
        self.last_seen = now
        self.verify_at = now
        self.reason: CloseReason | None = None
        # Set by ``end``: the session closes with it once its last frame is handed to the writer.
        self._ending: CloseReason | None = None
        self._on_close = on_close
        self._queue_size = queue_size
        self._frames: deque[Outbound] = deque()
        self._wakeup = asyncio.Event()
        self._ended = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self.reason is not None

    @property
    def pending(self) -> int:
        """Frames waiting for the writer."""
        return len(self._frames)

    def offer(self, frame: Outbound) -> bool:
        """Queue ``frame`` without waiting; a full outbox closes the session (slow consumer). False if not queued."""
        if self.reason is not None or self._ending is not None:
            return False
        if len(self._frames) >= self._queue_size:
            self.close(CloseReason.SLOW_CONSUMER)
            return False
        self._frames.append(frame)
        self._wakeup.set()
        return True

    def seen(self, now: float) -> None:
        """The client sent a frame: it is alive."""
        self.last_seen = now

    def close(self, reason: CloseReason) -> None:
        """End the session; frames still queued are dropped (the client catches up by sync)."""
        if self.reason is not None:
            return
        self.reason = reason
        self._frames.clear()
        self._wakeup.set()
        self._ended.set()
        self._on_close(self)

    def end(self, last: Outbound, reason: CloseReason) -> bool:
        """Close with ``reason`` once ``last`` is written: frames still queued are dropped (they would only be
        refused), nothing after it is queued. False if the session is closed or ending already."""
        if self.reason is not None or self._ending is not None:
            return False
        self._ending = reason
        self._frames.clear()
        self._frames.append(last)
        self._wakeup.set()
        return True

    async def wait_closed(self) -> CloseReason:
        await self._ended.wait()
        assert self.reason is not None
        return self.reason

    async def next(self) -> Outbound | None:
        """The next frame to write, waiting for one; None once the session is closed (an ending session closes
        when the writer asks for the frame after its last one)."""
        while True:
            if self.reason is not None:
                return None
            if self._frames:
                return self._frames.popleft()
            if self._ending is not None:
                self.close(self._ending)
                return None
            self._wakeup.clear()
            await self._wakeup.wait()


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A small cache of facts that may be briefly stale (members, peers), bounded in age and size."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def delete(self, key: K) -> None:
        self._entries.pop(key, None)

    def put(self, key: K, value: V) -> None:
        if self._ttl_s <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
