"""Operators: login answers the same whether or not the operator exists, lockouts hold for any username, a second
factor is required when set, sessions expire and end, and a change by cookie needs the CSRF token."""

from __future__ import annotations

import pyotp
import pytest

from tests.unit.admin.conftest import PASSWORD, Office
from tidings.admin.biz.model import Role
from tidings.admin.biz.operators import check_csrf
from tidings.pkg.errors import TidingsError


async def refused(work: object) -> TidingsError:
    with pytest.raises(TidingsError) as caught:
        await work  # type: ignore[misc]
    return caught.value


async def test_a_wrong_password_and_an_unknown_operator_get_the_same_answer(office: Office) -> None:
    await office.operators.create("alice", PASSWORD, Role.ADMIN)
    wrong = await refused(office.operators.login("alice", "not-the-password"))
    unknown = await refused(office.operators.login("nobody", PASSWORD))
    assert (wrong.code, wrong.reason, wrong.message) == (unknown.code, unknown.reason, unknown.message)
    assert wrong.reason == "OPERATOR_CREDENTIALS_INVALID"
    assert wrong.code == 401


async def test_failures_lock_any_username_then_the_lock_passes(office: Office) -> None:
    await office.operators.create("alice", PASSWORD, Role.ADMIN)
    for name in ("alice", "ghost"):
        answers = [await refused(office.operators.login(name, "wrong-password")) for _ in range(3)]
        assert [a.reason for a in answers] == ["OPERATOR_CREDENTIALS_INVALID"] * 2 + ["OPERATOR_LOGIN_LOCKED"]
        locked = await refused(office.operators.login(name, PASSWORD))
        assert locked.reason == "OPERATOR_LOGIN_LOCKED"
        assert locked.code == 429
        assert locked.metadata["retry_after_s"] == "60"
    office.clock.advance(s=61)
    assert (await office.operators.login("alice", PASSWORD)).operator.username == "alice"


async def test_a_success_clears_the_failures(office: Office) -> None:
    await office.operators.create("alice", PASSWORD, Role.ADMIN)
    for _ in range(2):
        await refused(office.operators.login("alice", "wrong-password"))
    await office.operators.login("alice", PASSWORD)
    for _ in range(2):
        await refused(office.operators.login("alice", "wrong-password"))
    await office.operators.login("ALICE", PASSWORD)


async def test_an_operator_with_a_second_factor_needs_the_current_code(office: Office) -> None:
    operator, secret = await office.operators.create("tess", PASSWORD, Role.MODERATOR, totp=True)
    assert secret
    assert "otpauth://totp/" in office.operators.provisioning_uri(operator, secret)
    assert (await refused(office.operators.login("tess", PASSWORD))).reason == "OPERATOR_CREDENTIALS_INVALID"
    assert (await refused(office.operators.login("tess", PASSWORD, "000000x"))).reason == "OPERATOR_CREDENTIALS_INVALID"
    signed = await office.operators.login("tess", PASSWORD, pyotp.TOTP(secret).now())
    assert signed.operator.totp_secret == ""
    assert signed.operator.password_hash == ""


async def test_sessions_expire_and_end_at_logout(office: Office) -> None:
    await office.operators.create("alice", PASSWORD, Role.VIEWER)
    first = await office.operators.login("alice", PASSWORD)
    second = await office.operators.login("alice", PASSWORD)
    assert (await office.operators.caller(first.token, by_cookie=True)).operator.username == "alice"
    await office.operators.logout(first.token)
    assert (await refused(office.operators.caller(first.token, by_cookie=True))).reason == "OPERATOR_SESSION_INVALID"
    office.clock.advance(s=601)
    assert (await refused(office.operators.caller(second.token, by_cookie=False))).code == 401
    assert (await refused(office.operators.caller("", by_cookie=True))).code == 401


async def test_a_change_by_cookie_needs_the_sessions_csrf_token(office: Office) -> None:
    await office.operators.create("alice", PASSWORD, Role.VIEWER)
    signed = await office.operators.login("alice", PASSWORD)
    by_cookie = await office.operators.caller(signed.token, by_cookie=True)
    check_csrf(by_cookie, signed.csrf_token)
    with pytest.raises(TidingsError) as caught:
        check_csrf(by_cookie, "")
    assert caught.value.reason == "CSRF_TOKEN_INVALID"
    assert caught.value.code == 403
    check_csrf(await office.operators.caller(signed.token, by_cookie=False), "")


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [("a", PASSWORD, "username"), ("has space", PASSWORD, "username"), ("alice", "short", "password")],
)
async def test_bad_operators_are_refused_by_field(office: Office, username: str, password: str, field: str) -> None:
    error = await refused(office.operators.create(username, password, Role.VIEWER))
    assert error.code == 400
    assert error.metadata["field"] == field


async def test_a_taken_username_is_refused(office: Office) -> None:
    await office.operators.create("alice", PASSWORD, Role.VIEWER)
    assert (await refused(office.operators.create("Alice", PASSWORD, Role.ADMIN))).reason == "OPERATOR_EXISTS"
