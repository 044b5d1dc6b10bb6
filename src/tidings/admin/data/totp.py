"""``PyOTPSecondFactor``: operators' time-based one-time codes (RFC 6238) with pyotp."""

from __future__ import annotations

import pyotp

ISSUER = "Tidings back office"


class PyOTPSecondFactor:
    def new_secret(self) -> str:
        return pyotp.random_base32()

    def verify(self, secret: str, code: str) -> bool:
        # One step either side: a code typed as it rolls over, or a clock a little off, still counts.
        return code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)

    def provisioning_uri(self, secret: str, username: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
