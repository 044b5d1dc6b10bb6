"""Refresh-token retention: expired tokens deleted in bounded batches. Account's token repository and the task
module's retention job both run it, so there is one such delete."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.service.account.tables import refresh_tokens


async def prune_expired_tokens(conn: AsyncConnection, before_ms: int, limit: int) -> int:
    """Delete up to ``limit`` tokens that expired before ``before_ms`` on ``conn`` (useless: an expired token is
    refused); how many were deleted."""
    ids = list(
        await conn.scalars(select(refresh_tokens.c.id).where(refresh_tokens.c.expires_at_ms < before_ms).limit(limit))
    )
    if not ids:
        return 0
    result = await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.id.in_(ids)))
    return int(result.rowcount)


async def count_expired_tokens(conn: AsyncConnection, before_ms: int) -> int:
    """How many tokens expired before ``before_ms``: what ``prune_expired_tokens`` would delete, in all batches."""
    found = await conn.scalar(
        select(func.count()).select_from(refresh_tokens).where(refresh_tokens.c.expires_at_ms < before_ms)
    )
    return int(found or 0)
