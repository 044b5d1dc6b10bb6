"""SQLAlchemy repositories of the account service (SQLite and MySQL alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg.repo import SQLRepo, chunks
from tidings.service.account.biz.ports import RefreshToken, UsernameTaken
from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.store.tokens import prune_expired_tokens
from tidings.service.account.tables import blocks, refresh_tokens, users
from tidings.service.account.user import User

_PUBLIC = (
    users.c.id,
    users.c.username,
    users.c.display_name,
    users.c.bio,
    users.c.avatar_url,
    users.c.created_at_ms,
)


def _user_from_row(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        bio=row.bio,
        avatar_url=row.avatar_url,
        created_at_ms=row.created_at_ms,
    )


def _account(row: Any) -> Account:
    return Account(
        _user_from_row(row), row.password_hash, bool(row.banned), row.tokens_valid_after_ms, row.last_active_at_ms
    )


class SQLUserRepo(SQLRepo):
    async def create(self, account: Account) -> None:
        user = account.user
        try:
            async with self._statement() as conn:
                await conn.execute(
                    insert(users).values(
                        id=user.id,
                        username=user.username,
                        display_name=user.display_name,
                        bio=user.bio,
                        avatar_url=user.avatar_url,
                        password_hash=account.password_hash,
                        banned=account.banned,
                        tokens_valid_after_ms=account.tokens_valid_after_ms,
                        last_active_at_ms=account.last_active_at_ms,
                        created_at_ms=user.created_at_ms,
                        updated_at_ms=user.created_at_ms,
                    )
                )
        except IntegrityError:
            raise UsernameTaken(user.username) from None

    async def get(self, user_id: int) -> Account | None:
        return await self._one(users.c.id == user_id)

    async def get_by_username(self, username: str) -> Account | None:
        return await self._one(users.c.username == username)

    async def get_accounts(self, user_ids: Sequence[int]) -> dict[int, Account]:
        return {account.user.id: account for account in await self._accounts(users.c.id, user_ids)}

    async def get_by_usernames(self, usernames: Sequence[str]) -> dict[str, Account]:
        return {account.user.username: account for account in await self._accounts(users.c.username, usernames)}

    async def _accounts(self, column: Any, values: Sequence[Any]) -> list[Account]:
        """The accounts whose ``column`` is one of ``values``; one query per ``IN`` chunk."""
        found: list[Account] = []
        async with self._read() as conn:
            for chunk in chunks(list(dict.fromkeys(values))):
                found += [_account(row) for row in await conn.execute(select(users).where(column.in_(chunk)))]
        return found

    async def _one(self, condition: Any) -> Account | None:
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(condition))).first()
        return _account(row) if row is not None else None

    async def get_many(self, user_ids: list[int]) -> list[User]:
        """Public profiles: the profile cache's loader, on the replica (docs/DATA.md; the delayed double delete
        bounds how long a value read there before an edit reached it stays cached)."""
        if not user_ids:
            return []

        async def read(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(select(*_PUBLIC).where(users.c.id.in_(user_ids)))).all())

        return [_user_from_row(row) for row in await self._replica_read(read)]

    async def update_profile(self, user_id: int, change: ProfileChange, now_ms: int) -> User | None:
        values = {
            name: value
            for name, value in (
                ("display_name", change.display_name),
                ("bio", change.bio),
                ("avatar_url", change.avatar_url),
            )
            if value is not None
        }
        async with self._write() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(**values, updated_at_ms=now_ms))
            row = (await conn.execute(select(*_PUBLIC).where(users.c.id == user_id))).first()
        return _user_from_row(row) if row is not None else None

    async def search(self, query: str, limit: int) -> list[User]:
        pattern = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        condition = or_(
            users.c.username.like(f"{pattern}%", escape="\\"),
            users.c.display_name.like(f"%{pattern}%", escape="\\"),
        )
        found = select(*_PUBLIC).where(condition, users.c.banned.is_(False)).order_by(users.c.username).limit(limit)

        async def read(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(found)).all())

        return [_user_from_row(row) for row in await self._replica_read(read)]

    async def revoke_tokens(self, user_id: int, now_ms: int, *, ban: bool, password_hash: str | None = None) -> bool:
        values: dict[str, Any] = {"tokens_valid_after_ms": now_ms + 1, "updated_at_ms": now_ms}
        if ban:
            values["banned"] = True
        if password_hash is not None:
            values["password_hash"] = password_hash
        return await self._update_one(user_id, values)

    async def unban(self, user_id: int, now_ms: int) -> bool:
        return await self._update_one(user_id, {"banned": False, "updated_at_ms": now_ms})

    async def mark_active(self, user_id: int, now_ms: int) -> None:
        await self._update_one(user_id, {"last_active_at_ms": now_ms})

    async def _update_one(self, user_id: int, values: dict[str, Any]) -> bool:
        """Set ``values`` on the user's row; False if there is no such user."""
        async with self._statement() as conn:
            result = await conn.execute(update(users).where(users.c.id == user_id).values(**values))
        return result.rowcount == 1


class SQLRefreshTokenRepo(SQLRepo):
    async def add(self, token: RefreshToken) -> None:
        async with self._statement() as conn:
            await conn.execute(
                insert(refresh_tokens).values(
                    id=token.id,
                    user_id=token.user_id,
                    family_id=token.family_id,
                    secret_hash=token.secret_hash,
                    expires_at_ms=token.expires_at_ms,
                )
            )

    async def get(self, token_id: int) -> RefreshToken | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(refresh_tokens).where(
                        refresh_tokens.c.id == token_id, refresh_tokens.c.revoked_at_ms.is_(None)
                    )
                )
            ).first()
        if row is None:
            return None
        return RefreshToken(row.id, row.user_id, row.family_id, row.secret_hash, row.expires_at_ms)

    async def spend(self, token_id: int, now_ms: int) -> bool:
        # The conditional update is the lock: of two racing refreshes with one token, exactly one wins.
        async with self._statement() as conn:
            result = await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.id == token_id,
                    refresh_tokens.c.spent_at_ms.is_(None),
                    refresh_tokens.c.revoked_at_ms.is_(None),
                )
                .values(spent_at_ms=now_ms)
            )
        return result.rowcount == 1

    async def prune_expired(self, before_ms: int, limit: int) -> int:
        """Delete up to ``limit`` tokens that expired before ``before_ms`` (``store.tokens``, as the task does)."""
        async with self._write() as conn:
            return await prune_expired_tokens(conn, before_ms, limit)

    async def revoke_family(self, family_id: int, now_ms: int) -> None:
        await self._revoke(refresh_tokens.c.family_id == family_id, now_ms)

    async def revoke_user(self, user_id: int, now_ms: int) -> None:
        await self._revoke(refresh_tokens.c.user_id == user_id, now_ms)

    async def _revoke(self, condition: Any, now_ms: int) -> None:
        async with self._statement() as conn:
            await conn.execute(
                update(refresh_tokens)
                .where(condition, refresh_tokens.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=now_ms)
            )


class SQLBlockRepo(SQLRepo):
    async def block(self, blocker_id: int, blocked_id: int, now_ms: int) -> None:
        try:
            async with self._statement() as conn:
                await conn.execute(
                    insert(blocks).values(blocker_id=blocker_id, blocked_id=blocked_id, created_at_ms=now_ms)
                )
        except IntegrityError:
            return  # already blocked: blocking is idempotent

    async def unblock(self, blocker_id: int, blocked_id: int) -> None:
        async with self._statement() as conn:
            await conn.execute(
                blocks.delete().where(blocks.c.blocker_id == blocker_id, blocks.c.blocked_id == blocked_id)
            )

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        # Both directions of every pair, as a row-value IN on the primary key.
        wanted = list(dict.fromkeys(edge for a, b in pairs for edge in ((a, b), (b, a))))
        found: set[tuple[int, int]] = set()
        async with self._read() as conn:
            for chunk in chunks(wanted):
                key = tuple_(blocks.c.blocker_id, blocks.c.blocked_id)
                rows = await conn.execute(select(blocks.c.blocker_id, blocks.c.blocked_id).where(key.in_(list(chunk))))
                found.update((blocker, blocked) for blocker, blocked in rows)
        return [(a, b) in found or (b, a) in found for a, b in pairs]
