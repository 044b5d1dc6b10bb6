"""Password hashing (argon2id, off the event loop), for chat users (account) and operators (admin) alike."""

from __future__ import annotations

import asyncio

import argon2


class Argon2Hasher:
    """argon2id (the library's defaults unless told otherwise); hashing costs tens of ms of CPU, so it runs in a
    thread."""

    def __init__(
        self, *, time_cost: int = argon2.DEFAULT_TIME_COST, memory_kib: int = argon2.DEFAULT_MEMORY_COST
    ) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
            return False
