"""``Cache``: typed cache-aside over a ``CacheStore``, in the spirit of Kratos's generated cache code.

Reads: look in the store; on a miss, load from the source of truth and store what was loaded (a missing row is
stored as the null sentinel, for a shorter time). Per key at most one fetch (store read + load + fill) runs in
this process at a time: concurrent callers of a key share it (singleflight), so a cold hot key costs one load.
``get_many`` reads all keys in one batch and loads only the keys that missed, with one loader call.

Writes never put values in the cache: after the write commits, ``invalidate`` deletes the keys and asks the
``Invalidator`` to delete them again after the replica-lag window (delayed double delete). A value loaded before
the write may still be stored after the first delete (the classic cache-aside race); the fill deadline makes
sure it is stored before the second delete, so it cannot outlive that (see docs/CACHE.md).

The store may fail (Redis down): a read then falls through to the loader, the error is counted and the store is
left alone for ``retry_after_s`` so requests do not each wait for a timeout. Nothing the store does is raised to a
caller. A loader's exception reaches every caller waiting on that fetch, and nothing is cached.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tidings.pkg import log
from tidings.pkg.cache.breaker import Breaker
from tidings.pkg.cache.codec import Codec, Corrupt, decode, encode
from tidings.pkg.cache.invalidation import Invalidator
from tidings.pkg.cache.metrics import CacheMetrics
from tidings.pkg.cache.ports import CacheStore

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class CachePolicy:
    # How long a value lives, spread by +-jitter (a fraction) so keys filled together do not expire together.
    ttl_s: float = 300.0
    # How long "no such row" is remembered: short, so a row created later shows up soon even without invalidation.
    null_ttl_s: float = 30.0
    jitter: float = 0.1
    # A value whose load took longer than this is returned but not stored: it may predate a write whose second
    # delete could already have run. Keep it below the invalidation delay.
    fill_deadline_s: float = 0.5
    # After a store error, skip the store for this long (reads go straight to the loader).
    retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        if self.ttl_s <= 0 or self.null_ttl_s <= 0:
            raise ValueError("TTLs must be positive")


@dataclass
class _Flight:
    """One fetch of one key in progress; callers of the key await ``future``."""

    future: asyncio.Future[Any]
    # Cleared when the key is invalidated meanwhile: the loaded value may predate the write, so it is not stored.
    fill: bool = True


@dataclass
class _Batch(Generic[K]):
    keys: list[K]
    store_keys: list[str]
    flights: list[_Flight] = field(default_factory=list)


@dataclass(frozen=True)
class Cached(Generic[V]):
    """What the store holds for a key, as ``Cache.peek_many`` found it: a value, the null sentinel (``value`` is
    ``None``), or bytes that are no value of this cache's schema (``corrupt``)."""

    value: V | None
    corrupt: bool = False


class Cache(Generic[K, V]):
    def __init__(
        self,
        name: str,
        store: CacheStore,
        codec: Codec[V],
        metrics: CacheMetrics,
        *,
        key: Callable[[K], str],
        policy: CachePolicy | None = None,
        invalidator: Invalidator | None = None,
        breaker: Breaker | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self._store = store
        self._codec = codec
        self._key = key
        self._policy = policy or CachePolicy()
        self._invalidator = invalidator
        self._clock = clock
        self._rng = rng
        self._flights: dict[str, _Flight] = {}
        self._breaker = breaker or Breaker(self._policy.retry_after_s, clock)
        self._log = log.get("cache")
        self._hits = metrics.requests.labels(name, "hit")
        self._misses = metrics.requests.labels(name, "miss")
        self._loads = metrics.loads.labels(name)
        self._loaded_keys = metrics.loaded_keys.labels(name)
        self._corrupt = metrics.corrupt.labels(name)
        self._late_fills = metrics.late_fills.labels(name)
        self._errors = {op: metrics.errors.labels(name, op) for op in ("get", "set", "delete", "invalidate")}

    def key(self, key: K) -> str:
        """The store key of ``key`` (what a ``cache.invalidate`` event names)."""
        return self._key(key)

    def ttl_s(self, *, null: bool = False) -> float:
        """A time to live with jitter: within ``ttl * (1 +- jitter)``."""
        base = self._policy.null_ttl_s if null else self._policy.ttl_s
        return base * (1 + self._policy.jitter * (2 * self._rng() - 1))

    async def get(self, key: K, load: Callable[[K], Awaitable[V | None]]) -> V | None:
        async def load_one(keys: list[K]) -> Mapping[K, V]:
            value = await load(keys[0])
            return {} if value is None else {keys[0]: value}

        found = await self._fetch([key], load_one)
        return found.get(key)

    async def get_many(self, keys: Sequence[K], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> dict[K, V]:
        """The rows that exist among ``keys``: one store read for all, one loader call for the misses."""
        return await self._fetch(list(dict.fromkeys(keys)), load_many)

    async def peek_many(self, keys: Sequence[K]) -> dict[K, Cached[V]]:
        """What the store holds for ``keys``, loading nothing and storing nothing: for checking the cache against its
        source (the reconcile task). Absent keys are left out; a store that fails raises (nothing to check then)."""
        unique = list(dict.fromkeys(keys))
        raws = await self._store.get_many([self._key(key) for key in unique])
        found: dict[K, Cached[V]] = {}
        for key, raw in zip(unique, raws, strict=True):
            if raw is None:
                continue
            try:
                found[key] = Cached(decode(self._codec, raw))
            except Corrupt:
                found[key] = Cached(None, corrupt=True)
        return found

    async def invalidate(self, keys: Sequence[K], *, entity_id: int = 0) -> None:
        store_keys = list(dict.fromkeys(self._key(key) for key in keys))
        if not store_keys:
            return
        for store_key in store_keys:
            flight = self._flights.pop(store_key, None)
            if flight is not None:
                flight.fill = False  # and later readers start a fresh fetch instead of joining this one
        try:
            await self._store.delete_many(store_keys)
        except Exception as exc:
            self._errors["delete"].inc()
            self._log.warning("cache delete failed; the delayed delete retries it", cache=self.name, error=repr(exc))
        if self._invalidator is not None:
            try:
                await self._invalidator.later(store_keys, entity_id)
            except Exception as exc:
                self._errors["invalidate"].inc()
                self._log.warning("scheduling the delayed delete failed", cache=self.name, error=repr(exc))

    async def _fetch(self, keys: list[K], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> dict[K, V]:
        waiting: dict[K, _Flight] = {}
        batch: _Batch[K] = _Batch([], [])
        loop = asyncio.get_running_loop()
        for key in keys:
            store_key = self._key(key)
            flight = self._flights.get(store_key)
            if flight is None:
                flight = _Flight(loop.create_future())
                flight.future.add_done_callback(_retrieve)
                self._flights[store_key] = flight
                batch.keys.append(key)
                batch.store_keys.append(store_key)
                batch.flights.append(flight)
            waiting[key] = flight
        if batch.keys:
            await self._start(batch, load_many)
        found: dict[K, V] = {}
        for key, flight in waiting.items():
            value = await asyncio.shield(flight.future)
            if value is not None:
                found[key] = value
        return found

    async def _start(self, batch: _Batch[K], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> None:
        """Read the store in the caller's task and answer the hits (a hit then costs no task to schedule); the
        misses are loaded in a task of their own. Its flights are registered already, so others asking for the
        same keys meanwhile join them instead of reading or loading again."""
        try:
            raws = await self._read(batch.store_keys)
        except BaseException:
            # The caller went away (cancelled) mid-read: the keys' other waiters still get their fetch.
            self._spawn(self._run(batch, load_many))
            raise
        missed = self._answer_hits(batch, raws)
        if missed:
            self._spawn(self._load(batch, missed, load_many))

    def _spawn(self, fetch: Awaitable[None]) -> None:
        # A task of its own: a caller that goes away (cancelled) does not cancel the fetch others wait on.
        task = asyncio.ensure_future(fetch)
        task.add_done_callback(_retrieve)

    async def _run(self, batch: _Batch[K], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> None:
        """The whole fetch in a task: read, answer the hits, load the misses."""
        try:
            raws = await self._read(batch.store_keys)
        except BaseException as exc:
            for store_key, flight in zip(batch.store_keys, batch.flights, strict=True):
                _settle(flight, exc)
                if self._flights.get(store_key) is flight:
                    del self._flights[store_key]
            raise
        missed = self._answer_hits(batch, raws)
        if missed:
            await self._load(batch, missed, load_many)

    async def _load(
        self, batch: _Batch[K], missed: list[int], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]
    ) -> None:
        try:
            wanted = [batch.keys[index] for index in missed]
            started = self._clock()
            self._loads.inc()
            self._loaded_keys.inc(len(wanted))
            try:
                loaded = await load_many(wanted)
            except BaseException as exc:
                for index in missed:
                    _settle(batch.flights[index], exc)
                raise
            rows = [
                (batch.store_keys[index], batch.flights[index], loaded.get(key))
                for index, key in zip(missed, wanted, strict=True)
            ]
            # Stored before answered: whoever asks after an answer finds the value in the store, not a second miss.
            await self._fill(rows, started)
            for store_key, flight, value in rows:
                self._resolve(store_key, flight, value)
        except BaseException as exc:
            for flight in batch.flights:
                _settle(flight, exc)
            raise
        finally:
            for store_key, flight in zip(batch.store_keys, batch.flights, strict=True):
                if self._flights.get(store_key) is flight:
                    del self._flights[store_key]

    def _answer_hits(self, batch: _Batch[K], raws: list[bytes | None]) -> list[int]:
        """Answer the keys found in the store; the indexes of the rest (absent, foreign or damaged bytes)."""
        missed: list[int] = []
        for index, raw in enumerate(raws):
            if raw is not None:
                try:
                    value = decode(self._codec, raw)
                except Corrupt:
                    self._corrupt.inc()
                else:
                    self._hits.inc()
                    self._resolve(batch.store_keys[index], batch.flights[index], value)
                    continue
            self._misses.inc()
            missed.append(index)
        return missed

    def _resolve(self, store_key: str, flight: _Flight, value: V | None) -> None:
        """Answer the flight's waiters and retire it: later callers read the store (or load) afresh, they never
        reuse an answer that is already on its way to being old."""
        flight.future.set_result(value)
        if self._flights.get(store_key) is flight:
            del self._flights[store_key]

    async def _read(self, store_keys: list[str]) -> list[bytes | None]:
        if self._breaker.open:
            return [None] * len(store_keys)
        try:
            raws = await self._store.get_many(store_keys)
        except Exception as exc:
            self._store_failed("get", exc)
            return [None] * len(store_keys)
        return raws

    async def _fill(self, rows: list[tuple[str, _Flight, V | None]], started: float) -> None:
        if self._breaker.open:
            return
        if self._clock() - started > self._policy.fill_deadline_s:
            self._late_fills.inc(len(rows))
            return
        items = [
            (store_key, encode(self._codec, value), self.ttl_s(null=value is None))
            for store_key, flight, value in rows
            if flight.fill
        ]
        if not items:
            return
        try:
            await self._store.set_many(items)
        except Exception as exc:
            self._store_failed("set", exc)

    def _store_failed(self, op: str, exc: Exception) -> None:
        self._errors[op].inc()
        self._breaker.trip()
        self._log.warning(
            "cache store failed; reading from the source",
            cache=self.name,
            op=op,
            error=repr(exc),
            retry_after_s=self._breaker.retry_after_s,
        )


def _settle(flight: _Flight, exc: BaseException) -> None:
    if not flight.future.done():
        if isinstance(exc, asyncio.CancelledError):
            flight.future.cancel()
        else:
            flight.future.set_exception(exc)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an exception as seen: the waiters that wanted it got it; nobody else needs a warning."""
    if not future.cancelled():
        future.exception()
