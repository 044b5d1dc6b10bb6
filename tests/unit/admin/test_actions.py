"""Moderation: each action checks the caller's role, its reason and its target, goes through the owning service,
and appears in the audit log exactly once: recorded before it is taken, with its result after, as failed when the
service refused or the call was cut short; never taken when the log cannot record it."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.admin.conftest import Office
from tidings.admin.biz.model import AuditQuery, Outcome, Role
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg.errors import TidingsError


@pytest.fixture
def people(office: Office) -> Office:
    office.accounts.add(7, "mallory")
    office.chats.add_group(40, [7, 8], ["hello", "buy cheap pills", "bye"])
    return office


async def test_a_ban_goes_to_account_and_is_audited_with_before_and_after(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    after = await people.moderation.ban(caller, 7, "  spam  ")
    assert after.banned
    assert people.accounts.calls == [("ban", 7, caller.operator.id, "spam")]
    [record] = await people.audited.page(caller, AuditQuery())
    assert record.entry.action == "ban_user"
    assert record.entry.target == "7"
    assert record.entry.reason == "spam"
    assert record.entry.operator == caller.operator.username
    assert record.entry.trace_id == "trace-1"
    assert record.outcome is Outcome.OK
    assert record.result is not None
    assert record.result.before == {"username": "mallory", "display_name": "Mallory", "banned": False}
    assert record.result.after is not None
    assert record.result.after["banned"] is True


async def test_a_viewer_cannot_act_and_nothing_is_recorded(people: Office) -> None:
    viewer = await people.caller(Role.VIEWER)
    for action in (
        people.moderation.ban(viewer, 7, "spam"),
        people.moderation.remove_message(viewer, 40, 2, "spam"),
        people.moderation.delete_group(viewer, 40, "spam"),
    ):
        with pytest.raises(TidingsError) as caught:
            await action
        assert caught.value.reason == "ROLE_REQUIRED"
        assert caught.value.code == 403
        assert caught.value.metadata["required_role"] == "moderator"
    assert people.accounts.calls == []
    assert people.audit.entries == []


async def test_resetting_a_password_needs_an_admin(people: Office) -> None:
    moderator, admin = await people.caller(Role.MODERATOR), await people.caller(Role.ADMIN)
    with pytest.raises(TidingsError) as caught:
        await people.moderation.reset_password(moderator, 7, "asked by the user")
    assert caught.value.metadata["required_role"] == "admin"
    assert await people.moderation.reset_password(admin, 7, "asked by the user") == "temporary-Password-1"
    [record] = await people.audited.page(admin, AuditQuery())
    assert record.entry.action == "reset_password"
    assert record.result is not None
    assert "temporary" not in str(record.result)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
async def test_every_action_needs_a_reason(people: Office, reason: str) -> None:
    caller = await people.caller(Role.ADMIN)
    for action in (
        people.moderation.ban(caller, 7, reason),
        people.moderation.unban(caller, 7, reason),
        people.moderation.reset_password(caller, 7, reason),
        people.moderation.remove_message(caller, 40, 2, reason),
        people.moderation.delete_group(caller, 40, reason),
    ):
        with pytest.raises(TidingsError) as caught:
            await action
        assert caught.value.code == 400
        assert caught.value.metadata["field"] == "reason"
    assert people.audit.entries == []


async def test_an_unknown_target_fails_the_action_and_is_recorded(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    expected = {
        people.moderation.ban(caller, 99, "spam"): "USER_NOT_FOUND",
        people.moderation.remove_message(caller, 40, 9, "spam"): "MESSAGE_NOT_FOUND",
        people.moderation.remove_message(caller, 41, 1, "spam"): "CONVERSATION_NOT_FOUND",
        people.moderation.delete_group(caller, 41, "spam"): "CONVERSATION_NOT_FOUND",
    }
    for action, reason in expected.items():
        with pytest.raises(TidingsError) as caught:
            await action
        assert caught.value.reason == reason
    records = await people.audited.page(caller, AuditQuery())
    assert [(r.entry.target, r.outcome) for r in records] == [
        ("41", Outcome.FAILED),
        ("41/1", Outcome.FAILED),
        ("40/9", Outcome.FAILED),
        ("99", Outcome.FAILED),
    ]
    assert records[0].result is not None
    assert records[0].result.error.startswith("CONVERSATION_NOT_FOUND")
    assert people.accounts.calls == []
    assert people.chats.removed == []


async def test_removing_a_message_recalls_it_with_the_reason(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    removed = await people.moderation.remove_message(caller, 40, 2, "spam")
    assert removed.recalled
    assert people.chats.removed == [(caller.operator.id, 40, 40002, "spam")]
    [record] = await people.audited.page(caller, AuditQuery())
    assert record.entry.target == "40/2"
    assert record.result is not None
    assert record.result.before is not None
    assert record.result.before["text"] == "buy cheap pills"
    assert record.result.before["id"] == "40002"
    assert record.result.after is not None
    assert record.result.after["recalled"] is True


async def test_only_a_group_can_be_deleted(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    detail = await people.moderation.delete_group(caller, 40, "abuse ring")
    assert detail.conversation.id == 40
    assert people.chats.deleted == [40]
    people.chats.add_group(41, [7, 8])
    people.chats.conversations[41] = people.chats.conversations[41].__class__(
        people.chats.conversations[41].conversation.__class__(41, "direct", "", 0, (7, 8), 0, 1, 2), [], 0, 0
    )
    with pytest.raises(TidingsError) as caught:
        await people.moderation.delete_group(caller, 41, "abuse")
    assert caught.value.reason == "NOT_A_GROUP"


async def test_a_failed_call_is_recorded_once_as_failed(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    people.accounts.fail_with = common_errors.unavailable("account is down")
    with pytest.raises(TidingsError):
        await people.moderation.ban(caller, 7, "spam")
    [record] = await people.audited.page(caller, AuditQuery())
    assert record.outcome is Outcome.FAILED
    assert record.result is not None
    assert record.result.error == "UNAVAILABLE: account is down"
    assert len(people.audit.entries) == len(people.audit.results) == 1


async def test_a_call_cut_short_is_recorded_as_failed(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    people.chats.block = asyncio.Event()
    action = asyncio.create_task(people.moderation.remove_message(caller, 40, 2, "spam"))
    await people.chats.entered.wait()
    action.cancel()
    with pytest.raises(asyncio.CancelledError):
        await action
    await asyncio.sleep(0)
    [record] = await people.audited.page(caller, AuditQuery())
    assert record.outcome is Outcome.FAILED
    assert record.result is not None
    assert "cancelled" in record.result.error
    assert people.chats.removed == []


async def test_no_action_is_taken_when_the_log_cannot_record_it(people: Office) -> None:
    caller = await people.caller(Role.MODERATOR)
    people.audit.refuse = True
    with pytest.raises(TidingsError) as caught:
        await people.moderation.ban(caller, 7, "spam")
    assert caught.value.reason == "AUDIT_UNAVAILABLE"
    assert caught.value.code == 503
    assert people.accounts.calls == []


async def test_an_admin_creates_operators_and_it_is_audited(people: Office) -> None:
    admin = await people.caller(Role.ADMIN)
    created, secret = await people.moderation.create_operator(
        admin, "Newbie", "another-long-password", Role.VIEWER, totp=False, reason="new hire"
    )
    assert created.username == "newbie"
    assert secret == ""
    with pytest.raises(TidingsError) as caught:
        await people.moderation.create_operator(
            admin, "newbie", "another-long-password", Role.VIEWER, totp=False, reason="again"
        )
    assert caught.value.reason == "OPERATOR_EXISTS"
    records = await people.audited.page(admin, AuditQuery())
    assert [(r.entry.action, r.outcome) for r in records] == [
        ("create_operator", Outcome.FAILED),
        ("create_operator", Outcome.OK),
    ]
