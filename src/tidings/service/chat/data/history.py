"""The embedded mode's ``HistoryCache``: there is no recent window outside Redis, so nothing to drop."""

from __future__ import annotations


class NoHistoryCache:
    async def forget(self, conversation_id: int) -> None:
        return None
