"""Reading and changing profiles, finding people, and blocking them.

People are found in the search index's users (by username and display-name prefix, any language); the index only
ranks, and the profiles shown are read here, so a banned or deleted user is never listed.

Profiles are read cache-aside (``profile_cache``): an edit commits, then invalidates the user's key (delete now
and again after the replica-lag window); it never writes the new value into the cache. See docs/CACHE.md.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.pkg.cache.ports import ReadThrough
from tidings.pkg.clock import Clock
from tidings.search.model import SearchUnavailable, UserSearch
from tidings.service.account.biz import user as rules
from tidings.service.account.biz.ports import BlockRepo, UserEvents, UserRepo
from tidings.service.account.biz.user import ProfileChange
from tidings.service.account.user import User

MAX_BATCH = 500
MAX_SEARCH = 50
# Code points of a user search, after trimming: one character would list most of the directory.
QUERY_LENGTH = range(2, 65)


def search_query_problems(query: str) -> dict[str, str]:
    """What is wrong with a user search (``{"query": why}``), if anything: control characters (a NUL would match
    everyone), or fewer than 2 / more than 64 code points once trimmed."""
    if any(unicodedata.category(char) == "Cc" for char in query):
        return {"query": "must not contain control characters"}
    if len(query.strip()) not in QUERY_LENGTH:
        return {"query": f"{QUERY_LENGTH.start}-{QUERY_LENGTH.stop - 1} characters, not counting spaces around them"}
    return {}


class Profiles:
    def __init__(
        self,
        users: UserRepo,
        blocks: BlockRepo,
        clock: Clock,
        profile_cache: ReadThrough[int, User] | None = None,
        *,
        events: UserEvents | None = None,
        search: UserSearch | None = None,
    ) -> None:
        self._users = users
        self._events = events
        # Without an index (tests and benchmarks of the profiles alone), the database's LIKE search.
        self._search = search
        self._blocks = blocks
        self._clock = clock
        self._cache = profile_cache

    async def get(self, user_id: int) -> User:
        user = await (self._cache.get(user_id, self._load) if self._cache is not None else self._load(user_id))
        if user is None:
            raise account_errors.user_not_found("no such user", user_id=str(user_id))
        return user

    async def get_many(self, user_ids: list[int]) -> list[User]:
        """The users that exist, in the order asked; missing ids are left out. One cache round trip, one query."""
        if len(user_ids) > MAX_BATCH:
            errors.raise_for_fields({"user_ids": f"at most {MAX_BATCH} ids"})
        wanted = list(dict.fromkeys(user_ids))
        found = (
            await self._cache.get_many(wanted, self._load_many)
            if self._cache is not None
            else await self._load_many(wanted)
        )
        return [found[user_id] for user_id in wanted if user_id in found]

    async def update(self, user_id: int, change: ProfileChange) -> User:
        errors.raise_for_fields(rules.profile_problems(change))
        now = self._clock.now_ms()
        updated = await self._users.update_profile(user_id, change, now)
        if self._cache is not None:  # committed: now drop the cached profile (never write the new one in)
            await self._cache.invalidate([user_id], entity_id=user_id)
        if updated is None:
            raise account_errors.user_not_found("no such user", user_id=str(user_id))
        if self._events is not None:
            await self._events.user_updated(updated, now)
        return updated

    async def _load(self, user_id: int) -> User | None:
        # The public profile, as ``get_many`` reads it (from the read replica where there is one): not the account,
        # whose reads (sign-in, tokens) must see the latest write.
        found = await self._users.get_many([user_id])
        return found[0] if found else None

    async def _load_many(self, user_ids: list[int]) -> Mapping[int, User]:
        return {user.id: user for user in await self._users.get_many(user_ids)}

    async def search(self, query: str, limit: int) -> list[User]:
        errors.raise_for_fields(search_query_problems(query))
        limit = max(1, min(limit, MAX_SEARCH))
        if self._search is None:
            return await self._users.search(query.strip().lower(), limit)
        try:
            found = await self._search.search_users(query.strip(), limit)
        except SearchUnavailable:
            raise common_errors.search_unavailable("user search is unavailable; try again shortly") from None
        # The index follows sign-ups within seconds; a whole username is also read from the store, first, so someone
        # who has just signed up is found by it at once (a client looks a person up by username to write to them).
        username = rules.normalize_username(query.strip())
        exact = await self._users.get_by_username(username) if rules.username_problem(username) is None else None
        ids = [exact.user.id] if exact is not None else []
        ids += [doc.id for doc in found if doc.id not in ids][: limit - len(ids)]
        accounts = await self._users.get_accounts(ids)
        return [accounts[id_].user for id_ in ids if id_ in accounts and not accounts[id_].banned]

    async def block(self, blocker_id: int, blocked_id: int) -> None:
        if blocker_id == blocked_id:
            raise account_errors.cannot_block_self("you cannot block yourself", field="user_id")
        await self.get(blocked_id)
        await self._blocks.block(blocker_id, blocked_id, self._clock.now_ms())

    async def unblock(self, blocker_id: int, blocked_id: int) -> None:
        await self._blocks.unblock(blocker_id, blocked_id)

    async def blocked_either_way(self, user_a: int, user_b: int) -> bool:
        (blocked,) = await self._blocks.blocked_pairs([(user_a, user_b)])
        return blocked

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        return await self._blocks.blocked_pairs(pairs)
