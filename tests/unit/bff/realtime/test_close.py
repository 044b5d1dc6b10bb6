"""How each transport tells a close: every reason has a WebSocket close code and a gRPC status."""

from __future__ import annotations

import pytest

from tidings.api.account.v1 import errors as account_errors
from tidings.bff.biz.realtime.session import CloseReason
from tidings.bff.service import gateway, ws


@pytest.mark.parametrize("reason", list(CloseReason))
def test_every_close_reason_has_a_close_code_and_a_status(reason: CloseReason) -> None:
    assert reason in ws.CLOSE_CODES
    assert (gateway.close_error(reason) is None) == (reason is CloseReason.CLIENT_CLOSED)


def test_a_ban_closes_with_4403_and_permission_denied_and_a_revocation_with_4401_and_token_revoked() -> None:
    assert ws.CLOSE_CODES[CloseReason.BANNED][0] == 4403
    assert ws.CLOSE_CODES[CloseReason.REVOKED][0] == 4401
    banned, revoked = gateway.close_error(CloseReason.BANNED), gateway.close_error(CloseReason.REVOKED)
    assert banned is not None
    assert revoked is not None
    assert (account_errors.is_user_banned(banned), banned.code) == (True, 403)
    assert (account_errors.is_token_revoked(revoked), revoked.code) == (True, 401)
