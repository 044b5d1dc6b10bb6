"""The display names of many users, read by the search index job for the messages it indexes (each message carries
its sender's name, so a search result shows it without another call)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg.repo import chunks
from tidings.service.account.tables import users


async def display_names(conn: AsyncConnection, user_ids: Sequence[int]) -> dict[int, str]:
    """The display name of each user of ``user_ids`` that exists, by id; one query per ``IN`` chunk."""
    names: dict[int, str] = {}
    for chunk in chunks(list(dict.fromkeys(user_ids))):
        rows = await conn.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(chunk)))
        names.update({row.id: row.display_name for row in rows})
    return names
