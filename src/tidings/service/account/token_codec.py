"""Access tokens as HS256 JWTs: account signs them, and every module holding the secret checks them on its own."""

from __future__ import annotations

import functools

import jwt

from tidings.service.account.tokens import AccessClaims, TokenExpired, TokenInvalid


class JWTCodec:
    """Access tokens as HS256 JWTs: ``sub`` is the user id, ``iat``/``exp`` in milliseconds precision."""

    ISSUER = "tidings"
    # Genuine tokens remembered with their claims: a client sends the same token with every request until it
    # refreshes, and checking the signature again (JSON and HMAC) would cost more than the rest of a small request.
    VERIFIED_CACHE = 16_384

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the token signing secret must be at least 32 characters")
        self._secret = secret
        # Only genuine tokens are cached (a refused one raises, and exceptions are not cached); expiry is checked
        # against the clock on every decode.
        self._verified = functools.lru_cache(maxsize=self.VERIFIED_CACHE)(self._verify)

    def encode(self, claims: AccessClaims) -> str:
        payload = {
            "iss": self.ISSUER,
            "sub": str(claims.user_id),
            "iat_ms": claims.issued_at_ms,
            "exp": claims.expires_at_ms // 1000,
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def decode(self, token: str, now_ms: int) -> AccessClaims:
        """The claims of a genuine, unexpired token; ``TokenExpired`` or ``TokenInvalid`` otherwise."""
        claims = self._verified(token)
        if claims.expires_at_ms <= now_ms:
            raise TokenExpired()
        return claims

    def _verify(self, token: str) -> AccessClaims:
        """The claims of a token signed with our secret, expired or not; ``TokenInvalid`` otherwise."""
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
        return AccessClaims(user_id=user_id, issued_at_ms=issued, expires_at_ms=expires)
