"""``SQLSenderNames``: senders' display names through account's published query (``account.store.users``)."""

from __future__ import annotations

from collections.abc import Collection

from tidings.job.biz.errors import Unavailable
from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.service.account.store.users import display_names


class SQLSenderNames(SQLRepo):
    async def names(self, user_ids: Collection[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await display_names(conn, list(user_ids))
