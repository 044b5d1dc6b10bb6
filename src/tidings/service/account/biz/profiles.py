"""Reading and changing profiles, finding people, and blocking them."""

from __future__ import annotations

from tidings.pkg import errors
from tidings.service.account.biz import user as rules
from tidings.service.account.biz.ports import BlockRepo, Clock, UserRepo
from tidings.service.account.biz.user import ProfileChange, User

MAX_BATCH = 500
MAX_SEARCH = 50
QUERY_LENGTH = range(1, 65)


class Profiles:
    def __init__(self, users: UserRepo, blocks: BlockRepo, clock: Clock) -> None:
        self._users = users
        self._blocks = blocks
        self._clock = clock

    async def get(self, user_id: int) -> User:
        account = await self._users.get(user_id)
        if account is None:
            raise errors.account.user_not_found("no such user", user_id=str(user_id))
        return account.user

    async def get_many(self, user_ids: list[int]) -> list[User]:
        """The users that exist, in the order asked; missing ids are left out."""
        if len(user_ids) > MAX_BATCH:
            errors.raise_for_fields({"user_ids": f"at most {MAX_BATCH} ids"})
        found = {user.id: user for user in await self._users.get_many(list(dict.fromkeys(user_ids)))}
        return [found[user_id] for user_id in dict.fromkeys(user_ids) if user_id in found]

    async def update(self, user_id: int, change: ProfileChange) -> User:
        errors.raise_for_fields(rules.profile_problems(change))
        updated = await self._users.update_profile(user_id, change, self._clock.now_ms())
        if updated is None:
            raise errors.account.user_not_found("no such user", user_id=str(user_id))
        return updated

    async def search(self, query: str, limit: int) -> list[User]:
        if len(query) not in QUERY_LENGTH or not query.strip():
            errors.raise_for_fields({"query": f"{QUERY_LENGTH.start}-{QUERY_LENGTH.stop - 1} characters"})
        return await self._users.search(query.strip().lower(), max(1, min(limit, MAX_SEARCH)))

    async def block(self, blocker_id: int, blocked_id: int) -> None:
        if blocker_id == blocked_id:
            raise errors.account.cannot_block_self("you cannot block yourself", field="user_id")
        await self.get(blocked_id)
        await self._blocks.block(blocker_id, blocked_id, self._clock.now_ms())

    async def unblock(self, blocker_id: int, blocked_id: int) -> None:
        await self._blocks.unblock(blocker_id, blocked_id)

    async def blocked_either_way(self, user_a: int, user_b: int) -> bool:
        return await self._blocks.blocked_either_way(user_a, user_b)
