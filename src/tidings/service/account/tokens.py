"""The access tokens account issues, as its use cases and every verifier (the bff) see them: claims, the two ways
a token is refused, and the decoder port. The format itself (HS256 JWTs) is ``token_codec``.

Checking the signature and the expiry needs no round trip; whether a genuine token was revoked since it was
issued (a ban, "log out everywhere") is account's to say, and each verifier asks it (see ``bff.biz.auth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tidings.api.account.v1 import errors as account_errors


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    issued_at_ms: int
    expires_at_ms: int


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


class TokenDecoder(Protocol):
    def decode(self, token: str, now_ms: int) -> AccessClaims:
        """The claims of a genuine, unexpired token; ``TokenExpired`` / ``TokenInvalid`` otherwise."""


def claims_or_401(decoder: TokenDecoder, token: str, now_ms: int) -> AccessClaims:
    """The token's claims, or the error the client sees: 401 ``TOKEN_EXPIRED`` (refresh it) or ``TOKEN_INVALID``."""
    try:
        return decoder.decode(token, now_ms)
    except TokenExpired:
        raise account_errors.token_expired("access token expired; refresh it") from None
    except Exception:
        raise account_errors.token_invalid("access token is not valid") from None
