"""Operators, their sessions and failed logins in the back office's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tidings.admin.biz.model import Operator, Role
from tidings.admin.tables import login_failures, operators, sessions
from tidings.api.admin.v1 import errors as admin_errors
from tidings.pkg.repo import SQLRepo


class SQLOperatorRepo(SQLRepo):
    async def add(self, operator: Operator) -> None:
        try:
            async with self._write() as conn:
                await conn.execute(
                    insert(operators).values(
                        id=operator.id,
                        username=operator.username,
                        password_hash=operator.password_hash,
                        role=operator.role.value,
                        totp_secret=operator.totp_secret,
                        created_at_ms=operator.created_at_ms,
                    )
                )
        except IntegrityError:
            raise admin_errors.operator_exists(f"an operator is named {operator.username}") from None

    async def by_username(self, username: str) -> Operator | None:
        async with self._read() as conn:
            row = (await conn.execute(select(operators).where(operators.c.username == username))).first()
        return _operator(row) if row is not None else None

    async def get(self, operator_id: int) -> Operator | None:
        async with self._read() as conn:
            row = (await conn.execute(select(operators).where(operators.c.id == operator_id))).first()
        return _operator(row) if row is not None else None

    async def all(self) -> list[Operator]:
        async with self._read() as conn:
            rows = await conn.execute(select(operators).order_by(operators.c.username))
        return [_operator(row) for row in rows]


def _operator(row: Any) -> Operator:
    return Operator(row.id, row.username, Role(row.role), row.created_at_ms, row.password_hash, row.totp_secret)


class SQLSessionRepo(SQLRepo):
    async def add(self, token_hash: str, operator_id: int, csrf_token: str, now_ms: int, expires_at_ms: int) -> None:
        async with self._write() as conn:
            await conn.execute(delete(sessions).where(sessions.c.expires_at_ms <= now_ms))
            await conn.execute(
                insert(sessions).values(
                    token_hash=token_hash,
                    operator_id=operator_id,
                    csrf_token=csrf_token,
                    created_at_ms=now_ms,
                    expires_at_ms=expires_at_ms,
                )
            )

    async def find(self, token_hash: str, now_ms: int) -> tuple[int, str, int] | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(sessions.c.operator_id, sessions.c.csrf_token, sessions.c.expires_at_ms).where(
                        sessions.c.token_hash == token_hash, sessions.c.expires_at_ms > now_ms
                    )
                )
            ).first()
        return (row.operator_id, row.csrf_token, row.expires_at_ms) if row is not None else None

    async def remove(self, token_hash: str) -> None:
        async with self._statement() as conn:
            await conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))


class SQLLoginFailures(SQLRepo):
    async def locked_until(self, username: str) -> int:
        async with self._read() as conn:
            value = await conn.scalar(
                select(login_failures.c.locked_until_ms).where(login_failures.c.username == username[:128])
            )
        return int(value or 0)

    async def failed(self, username: str, now_ms: int, *, max_failures: int, lock_ms: int) -> int:
        name = username[:128]
        table = login_failures
        async with self._write() as conn:
            row = (
                await conn.execute(select(table.c.failures).where(table.c.username == name).with_for_update())
            ).first()
            failures = (row.failures if row is not None else 0) + 1
            locked_until = now_ms + lock_ms if failures >= max_failures else 0
            values = {
                "failures": 0 if locked_until else failures,
                "locked_until_ms": locked_until,
                "updated_at_ms": now_ms,
            }
            if row is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(table).values(username=name, **values))
                except IntegrityError:  # a concurrent first failure: count on its row
                    await conn.execute(update(table).where(table.c.username == name).values(**values))
            else:
                await conn.execute(update(table).where(table.c.username == name).values(**values))
        return locked_until

    async def clear(self, username: str) -> None:
        async with self._statement() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.username == username[:128]))
