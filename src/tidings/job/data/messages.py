"""``SQLMessageStore``: the persist batch written through chat's one message write (``chat.store.messages``)."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.job.biz.errors import Unavailable
from tidings.job.data.errors import DATABASE_DOWN
from tidings.pkg.repo import SQLRepo
from tidings.service.chat.message import Message
from tidings.service.chat.store.messages import write_messages


class SQLMessageStore(SQLRepo):
    async def persist(self, batch: Sequence[Message]) -> None:
        if not batch:
            return
        try:
            async with self._write() as conn:
                await write_messages(conn, batch)
        except DATABASE_DOWN as exc:
            raise Unavailable(f"database: {exc!r}") from exc
