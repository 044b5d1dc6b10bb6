"""Password hashing (argon2id, off the event loop) and access tokens (JWT, HS256)."""

from __future__ import annotations

import asyncio

import argon2
import jwt

from tidings.service.account.biz.ports import AccessClaims, TokenExpired, TokenInvalid


class Argon2Hasher:
    """argon2id with the library's defaults; hashing costs tens of ms of CPU, so it runs in a thread."""

    def __init__(self) -> None:
        self._hasher = argon2.PasswordHasher()

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
            return False


class JWTCodec:
    """Access tokens as HS256 JWTs: ``sub`` is the user id, ``iat``/``exp`` in milliseconds precision."""

    ISSUER = "tidings"

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the token signing secret must be at least 32 characters")
        self._secret = secret

    def encode(self, claims: AccessClaims) -> str:
        payload = {
            "iss": self.ISSUER,
            "sub": str(claims.user_id),
            "iat_ms": claims.issued_at_ms,
            "exp": claims.expires_at_ms // 1000,
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def decode(self, token: str, now_ms: int) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self.ISSUER,
                options={"require": ["sub", "exp", "iss"], "verify_exp": False},
            )
            user_id, issued, expires = int(payload["sub"]), int(payload["iat_ms"]), int(payload["exp"]) * 1000
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
            raise TokenInvalid(str(exc)) from None
        if expires <= now_ms:
            raise TokenExpired()
        return AccessClaims(user_id=user_id, issued_at_ms=issued, expires_at_ms=expires)
