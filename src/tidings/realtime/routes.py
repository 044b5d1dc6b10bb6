"""The route table: which bff instance holds each live connection (session) of each user, and how to reach it.

The two adapters of ``tidings.realtime.model.RouteTable``. The bff writes it (a route on connect, refreshed by
heartbeat, removed on disconnect); the push job reads it with ``routes_for`` (one pipelined round trip for many
users), groups the sessions by instance and calls ``Deliver`` once per instance (``tidings.realtime.delivery``).
A user is online while they have at least one live route.

Redis layout (one key per user, so each change to a user's routes is one atomic script on one cluster slot):

- ``<prefix>:user:<user_id>`` hash: field = session id, value = ``"<expires_at_ms>|<instance address>"``. A route is
  live while ``expires_at_ms`` is ahead of the clock, so a crashed bff's routes stop counting at their expiry;
  the key itself expires two TTLs after its newest write (garbage collection): later than its routes, so the
  sweep, which runs every third of a TTL, still finds an expired route and reports its user offline.
- ``<prefix>:instance:<address>`` string: each bff's beacon, written every second for two TTLs. Finding its own
  beacon gone tells a bff that the table lost its routes (``beacon``).
- ``<prefix>:expiry`` sorted set of ``"<user_id>|<session_id>"`` scored by ``expires_at_ms``: ``sweep`` finds the
  routes that expired without a disconnect and reports users who went offline that way, each to one caller. A
  sweeper claims entries by moving them one TTL ahead (a lease) and settles them once done, so a sweep cut off
  midway (a timeout, a crash) leaves its entries to the next one rather than losing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from tidings.pkg.clock import Clock, SystemClock
from tidings.pkg.scripts import Script
from tidings.realtime.model import Route, Routes

# Each script touches one key (the user's hash), as Redis Cluster requires. Expiry times are the caller's clock.
_EXPIRES = "tonumber(string.match(entries[i + 1], '^%d+'))"

# ARGV: session, value, now_ms, key_ttl_ms. Writes the route; answers 1 if the user already had a live route.
# Expired routes of other sessions are dropped on the way (their sweep entries then find nothing to do).
_TOUCH = f"""
local now = tonumber(ARGV[3])
local was_online = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local expires = {_EXPIRES}
  if expires and expires > now then
    was_online = 1
  elseif entries[i] ~= ARGV[1] then
    redis.call('HDEL', KEYS[1], entries[i])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return was_online
"""

# ARGV: session, now_ms. Removes the route; answers 1 if the user still has a live route.
_REMOVE = f"""
redis.call('HDEL', KEYS[1], ARGV[1])
local now = tonumber(ARGV[2])
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local expires = {_EXPIRES}
  if expires and expires > now then
    return 1
  end
end
return 0
"""

# ARGV: session, now_ms. For a route the sweep found expired: -1 already gone; its new expiry if it was refreshed
# meanwhile; otherwise removed, and then -2 if the user is still online through another route, 0 if offline.
_SWEEP = f"""
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return -1
end
local now = tonumber(ARGV[2])
local own = tonumber(string.match(value, '^%d+'))
if own and own > now then
  return own
end
redis.call('HDEL', KEYS[1], ARGV[1])
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local expires = {_EXPIRES}
  if expires and expires > now then
    return -2
  end
end
return 0
"""


# KEYS[1] the expiry index. ARGV: now_ms, lease_until_ms, limit. Moves up to ``limit`` due entries to the lease
# (no other sweeper sees them until it ends) and answers them.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
"""

# KEYS[1] the expiry index. ARGV: lease_until_ms, then (member, expires_at_ms) pairs: 0 drops the entry, another
# value re-scores it. Only entries still on this lease: a refresh or a disconnect meanwhile has the last word.
_SETTLE = """
local lease = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == lease then
    if ARGV[i + 1] == '0' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
    end
  end
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(value: bytes | str) -> tuple[int, str]:
    """``(expires_at_ms, instance)`` of a stored route; a malformed value counts as expired."""
    expires, _, instance = _text(value).partition("|")
    return (int(expires) if expires.isdigit() else 0), instance


class RedisRouteTable:
    """The route table in Redis: many users' routes looked up in one pipelined round trip."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: float = 90.0,
        prefix: str = "rt",
        clock: Clock | None = None,
    ) -> None:
        self._redis = client
        self._ttl_ms = int(ttl_s * 1000)
        # Were the key to expire with its newest route, Redis would drop it before the sweep saw the route expire
        # and a crashed instance's users would never be reported offline.
        self._key_ttl_ms = 2 * self._ttl_ms
        self._prefix = prefix
        self._clock = clock or SystemClock()
        self._touch = Script(client, _TOUCH)
        self._remove = Script(client, _REMOVE)
        self._sweep = Script(client, _SWEEP)
        self._claim = client.register_script(_CLAIM)
        self._settle = client.register_script(_SETTLE)

    def user_key(self, user_id: int) -> str:
        return f"{self._prefix}:user:{user_id}"

    async def beacon(self, instance: str) -> bool:
        """One round trip: SET with GET answers the mark that was there."""
        key = f"{self._prefix}:instance:{instance}"
        return await self._redis.set(key, b"1", px=self._key_ttl_ms, get=True) is not None

    @property
    def expiry_key(self) -> str:
        return f"{self._prefix}:expiry"

    async def touch(self, routes: Sequence[Route]) -> list[int]:
        """Write (or refresh) each route for one TTL; answer the users who had no live route before (came online)."""
        if not routes:
            return []
        now = self._clock.now_ms()
        expires = now + self._ttl_ms

        def fill(pipe: Pipeline) -> None:
            for user_id, session_id, instance in routes:
                args = (session_id, f"{expires}|{instance}", now, self._key_ttl_ms)
                self._touch.call(pipe, [self.user_key(user_id)], args)
            # Safe to run twice (``Script.run``): the same routes written again, the same expiries set again.
            pipe.zadd(self.expiry_key, {f"{user_id}|{session_id}": expires for user_id, session_id, _ in routes})

        answers = await self._touch.run(fill)
        return _came_online(routes, [int(was_online) for was_online in answers[: len(routes)]])

    async def remove(self, routes: Sequence[Route]) -> list[int]:
        """Delete the routes; answer the users left with no live route (went offline). The push job ignores the
        answer when it prunes the sessions ``Deliver`` reported gone: the bff that held them announces."""
        if not routes:
            return []
        now = self._clock.now_ms()

        def fill(pipe: Pipeline) -> None:
            for user_id, session_id, _ in routes:
                self._remove.call(pipe, [self.user_key(user_id)], (session_id, now))
            # Safe to run twice (``Script.run``): removing what is gone changes nothing.
            pipe.zrem(self.expiry_key, *{f"{user_id}|{session_id}" for user_id, session_id, _ in routes})

        answers = await self._remove.run(fill)
        # A user's last removal in the batch saw what is left of them.
        left = {route[0]: int(online) for route, online in zip(routes, answers, strict=False)}
        return sorted(user for user, online in left.items() if not online)

    async def routes_for(self, user_ids: Iterable[int]) -> Routes:
        """The live routes of each user, in one round trip; users with none are left out."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        now = self._clock.now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in ids:
                pipe.hgetall(self.user_key(user_id))
            answers = await pipe.execute()
        found: Routes = {}
        for user_id, entries in zip(ids, answers, strict=True):
            live = {}
            for session, value in entries.items():
                expires, instance = _parse(value)
                if expires > now:
                    live[_text(session)] = instance
            if live:
                found[user_id] = live
        return found

    async def online(self, user_ids: Iterable[int]) -> set[int]:
        """The users among ``user_ids`` with at least one live route."""
        return set(await self.routes_for(user_ids))

    async def sweep(self, limit: int = 500) -> list[int]:
        """Remove up to ``limit`` routes that expired without a disconnect (a crashed or stalled bff) and answer
        the users who are offline because of it. Safe to run on every instance: each route is claimed once."""
        now = self._clock.now_ms()
        lease = now + self._ttl_ms
        due = cast(list[bytes], await self._claim(keys=[self.expiry_key], args=(now, lease, limit)))
        if not due:
            return []
        members = [_text(member) for member in due]
        pairs = [(int(user), session) for user, _, session in (member.partition("|") for member in members)]

        # Run twice only if Redis forgot the script, which then swept nothing the first time.
        def fill(pipe: Pipeline) -> None:
            for user_id, session in pairs:
                self._sweep.call(pipe, [self.user_key(user_id)], (session, now))

        outcomes = [int(outcome) for outcome in await self._sweep.run(fill)]
        # A refreshed route keeps its entry at its new expiry; any other outcome drops the entry.
        settled = [
            value for member, outcome in zip(members, outcomes, strict=True) for value in (member, max(outcome, 0))
        ]
        await self._settle(keys=[self.expiry_key], args=(lease, *settled))
        return sorted({user for (user, _), outcome in zip(pairs, outcomes, strict=True) if outcome == 0})


def _came_online(routes: Sequence[Route], was_online: Sequence[int]) -> list[int]:
    """Users whose first route in the batch found them offline (a later one of theirs finds the first)."""
    first: dict[int, int] = {}
    for route, before in zip(routes, was_online, strict=True):
        first.setdefault(route[0], before)
    return sorted(user for user, before in first.items() if not before)


class MemoryRouteTable:
    """The route table of ``tidings dev`` (every module in one process): the same behaviour as Redis, in a dict."""

    def __init__(self, *, ttl_s: float = 90.0, clock: Clock | None = None) -> None:
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock or SystemClock()
        # user id -> session id -> (expires_at_ms, instance)
        self._users: dict[int, dict[str, tuple[int, str]]] = {}
        self._beacons: set[str] = set()

    def _live(self, user_id: int, now: int) -> dict[str, tuple[int, str]]:
        return {s: entry for s, entry in self._users.get(user_id, {}).items() if entry[0] > now}

    async def touch(self, routes: Sequence[Route]) -> list[int]:
        now = self._clock.now_ms()
        came_online: set[int] = set()
        for user_id, session_id, instance in routes:
            live = self._live(user_id, now)
            if not live:
                came_online.add(user_id)
            live[session_id] = (now + self._ttl_ms, instance)
            self._users[user_id] = live
        return sorted(came_online)

    async def remove(self, routes: Sequence[Route]) -> list[int]:
        now = self._clock.now_ms()
        for user_id, session_id, _ in routes:
            self._users.get(user_id, {}).pop(session_id, None)
        offline = sorted({user_id for user_id, _, _ in routes if not self._live(user_id, now)})
        for user_id in offline:
            self._users.pop(user_id, None)
        return offline

    async def routes_for(self, user_ids: Iterable[int]) -> Routes:
        now = self._clock.now_ms()
        found: Routes = {}
        for user_id in dict.fromkeys(user_ids):
            live = {session: instance for session, (_, instance) in self._live(user_id, now).items()}
            if live:
                found[user_id] = live
        return found

    async def online(self, user_ids: Iterable[int]) -> set[int]:
        return set(await self.routes_for(user_ids))

    async def beacon(self, instance: str) -> bool:
        # Nothing of a process's own memory is lost while it runs.
        kept = instance in self._beacons
        self._beacons.add(instance)
        return kept

    async def sweep(self, limit: int = 500) -> list[int]:
        now = self._clock.now_ms()
        offline: set[int] = set()
        swept = 0
        for user_id in list(self._users):
            entries = self._users[user_id]
            for session in [s for s, (expires, _) in entries.items() if expires <= now][: limit - swept]:
                del entries[session]
                swept += 1
                if not self._live(user_id, now):
                    offline.add(user_id)
            if not entries:
                del self._users[user_id]
            if swept >= limit:
                break
        return sorted(offline)
