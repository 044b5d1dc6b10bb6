"""Reading and changing profiles, finding people, and blocking them.

Profiles are read cache-aside (``profile_cache``): an edit commits, then invalidates the user's key (delete now
and again after the replica-lag window); it never writes the new value into the cache. See docs/CACHE.md.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from tidings.api.account.v1 import errors as account_errors
from tidings.pkg import errors
from tidings.pkg.cache.ports import ReadThrough
from tidings.pkg.clock import Clock
from tidings.service.account.biz import user as rules
from tidings.service.account.biz.ports import BlockRepo, UserRepo
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
    ) -> None:
        self._users = users
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
        updated = await self._users.update_profile(user_id, change, self._clock.now_ms())
        if self._cache is not None:  # committed: now drop the cached profile (never write the new one in)
            await self._cache.invalidate([user_id], entity_id=user_id)
        if updated is None:
            raise account_errors.user_not_found("no such user", user_id=str(user_id))
        return updated

    async def _load(self, user_id: int) -> User | None:
        account = await self._users.get(user_id)
        return account.user if account is not None else None

    async def _load_many(self, user_ids: list[int]) -> Mapping[int, User]:
        return {user.id: user for user in await self._users.get_many(user_ids)}

    async def search(self, query: str, limit: int) -> list[User]:
        errors.raise_for_fields(search_query_problems(query))
        return await self._users.search(query.strip().lower(), max(1, min(limit, MAX_SEARCH)))

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
