"""What operators do to accounts (look up, ban, unban, reset a password), on the in-memory fakes."""

from __future__ import annotations

import pytest

from tests.unit.account.fakes import (
    FakeClock,
    FakeCodec,
    FakeIds,
    FakeRefreshTokens,
    FakeUsers,
    PlainHasher,
    RecordedEvents,
)
from tests.unit.task.fakes import RecordingLogger
from tidings.api.account.v1 import account_pb2
from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.pkg.middleware import validation
from tidings.service.account.biz.auth import Auth, AuthPolicy
from tidings.service.account.biz.operators import OperatorAction, Operators
from tidings.service.account.biz.ports import RevokeCause

ACTION = OperatorAction(operator_id=7, reason="spam reported by three users")


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.users = FakeUsers()
        self.refresh = FakeRefreshTokens()
        self.events = RecordedEvents()
        hasher = PlainHasher()
        self.auth = Auth(
            self.users, self.refresh, hasher, FakeCodec(), FakeIds(), self.clock, AuthPolicy(), self.events
        )
        self.log = RecordingLogger()
        self.operators = Operators(self.users, self.auth, hasher, self.clock, self.log)


@pytest.fixture
def world() -> World:
    return World()


async def test_inspect_answers_ids_in_order_then_usernames_of_any_case_each_user_once(world: World) -> None:
    alice = (await world.auth.register("alice", "correct horse", None)).user
    world.clock.now += 5
    bob = (await world.auth.register("bob", "correct horse", None)).user
    records = await world.operators.inspect([bob.id, 424242, alice.id], ["ALICE", "nobody", "Bob"])
    assert [record.user.id for record in records] == [bob.id, alice.id]
    assert records[0].last_active_at_ms == world.clock.now
    assert not records[0].banned
    assert await world.operators.inspect([], []) == []


async def test_last_activity_follows_sign_ins_and_refreshes(world: World) -> None:
    session = await world.auth.register("alice", "correct horse", None)
    world.clock.now += 60_000
    await world.auth.refresh(session.refresh_token)
    (record,) = await world.operators.inspect([session.user.id], [])
    assert record.last_active_at_ms == world.clock.now


async def test_a_ban_revokes_everything_refuses_sign_in_and_announces_the_cause(world: World) -> None:
    session = await world.auth.register("mallory", "correct horse", None)
    world.clock.now += 10
    change = await world.operators.ban(session.user.id, ACTION)
    assert (change.before.banned, change.after.banned) == (False, True)
    assert world.events.revoked == [(session.user.id, RevokeCause.BANNED, world.clock.now + 1)]
    with pytest.raises(errors.TidingsError) as access:
        await world.auth.verify(session.access_token)
    assert account_errors.is_token_revoked(access.value)
    with pytest.raises(errors.TidingsError) as refresh:
        await world.auth.refresh(session.refresh_token)
    assert refresh.value.code == 401  # a revoked refresh token reads as unknown: TOKEN_INVALID
    with pytest.raises(errors.TidingsError) as login:
        await world.auth.login("mallory", "correct horse")
    assert account_errors.is_user_banned(login.value)


async def test_banning_twice_keeps_the_user_banned(world: World) -> None:
    user = (await world.auth.register("mallory", "correct horse", None)).user
    await world.operators.ban(user.id, ACTION)
    again = await world.operators.ban(user.id, ACTION)
    assert (again.before.banned, again.after.banned) == (True, True)


async def test_unban_lets_the_user_sign_in_again_but_old_tokens_stay_revoked(world: World) -> None:
    session = await world.auth.register("mallory", "correct horse", None)
    world.clock.now += 10
    await world.operators.ban(session.user.id, ACTION)
    world.clock.now += 10
    change = await world.operators.unban(session.user.id, ACTION)
    assert (change.before.banned, change.after.banned) == (True, False)
    assert (await world.operators.unban(session.user.id, ACTION)).after.banned is False
    with pytest.raises(errors.TidingsError) as access:
        await world.auth.verify(session.access_token)
    assert account_errors.is_token_revoked(access.value)
    fresh = await world.auth.login("mallory", "correct horse")
    assert (await world.auth.verify(fresh.access_token)).user_id == session.user.id


async def test_a_reset_password_replaces_the_old_one_and_ends_every_session(world: World) -> None:
    session = await world.auth.register("alice", "correct horse", None)
    world.clock.now += 10
    password = await world.operators.reset_password(session.user.id, ACTION)
    assert len(password) >= 16
    assert password != await world.operators.reset_password(session.user.id, ACTION)
    assert [cause for _, cause, _ in world.events.revoked] == [RevokeCause.PASSWORD_RESET] * 2
    with pytest.raises(errors.TidingsError) as access:
        await world.auth.verify(session.access_token)
    assert account_errors.is_token_revoked(access.value)
    with pytest.raises(errors.TidingsError) as old:
        await world.auth.login("alice", "correct horse")
    assert account_errors.is_invalid_credentials(old.value)
    latest = await world.operators.reset_password(session.user.id, ACTION)
    world.clock.now += 10
    assert (await world.auth.login("alice", latest)).user.id == session.user.id


async def test_each_action_logs_the_operator_and_reason_but_never_the_password(world: World) -> None:
    user = (await world.auth.register("alice", "correct horse", None)).user
    password = await world.operators.reset_password(user.id, ACTION)
    await world.operators.ban(user.id, ACTION)
    await world.operators.unban(user.id, ACTION)
    assert [(level, fields) for level, _, fields in world.log.lines] == [
        ("info", {"user_id": user.id, "operator_id": 7, "reason": ACTION.reason})
    ] * 3
    assert password not in repr(world.log.lines)


async def test_log_out_everywhere_announces_its_cause(world: World) -> None:
    user = (await world.auth.register("alice", "correct horse", None)).user
    await world.auth.revoke_all(user.id)
    assert [cause for _, cause, _ in world.events.revoked] == [RevokeCause.LOGOUT_ALL]


@pytest.mark.parametrize("act", ["ban", "unban", "reset_password"])
async def test_an_unknown_user_is_user_not_found_and_nothing_is_announced(world: World, act: str) -> None:
    with pytest.raises(errors.TidingsError) as raised:
        await getattr(world.operators, act)(424242, ACTION)
    assert account_errors.is_user_not_found(raised.value)
    assert world.events.revoked == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (account_pb2.BanUserRequest(user_id=1), "action"),
        (account_pb2.BanUserRequest(user_id=1, action=account_pb2.OperatorAction(operator_id=7)), "action.reason"),
        (
            account_pb2.UnbanUserRequest(user_id=1, action=account_pb2.OperatorAction(reason="why")),
            "action.operator_id",
        ),
        (account_pb2.ResetPasswordRequest(action=account_pb2.OperatorAction(operator_id=7, reason="x")), "user_id"),
    ],
)
def test_an_operator_call_without_an_operator_or_a_reason_is_refused_naming_the_field(
    request_: account_pb2.BanUserRequest, field: str
) -> None:
    with pytest.raises(errors.TidingsError) as raised:
        validation.check(request_)
    assert common_errors.is_invalid_argument(raised.value)
    assert raised.value.metadata["field"] == field
