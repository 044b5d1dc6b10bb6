"""``SQLMessageStore``: the persist batch written through chat's one message write (``chat.store.messages``)."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.job.biz.errors import Unavailable
from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.service.chat.message import Message
from tidings.service.chat.store.messages import write_messages


class SQLMessageStore(SQLRepo):
    async def persist(self, batch: Sequence[Message]) -> None:
        if not batch:
            return
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                await write_messages(conn, batch)
