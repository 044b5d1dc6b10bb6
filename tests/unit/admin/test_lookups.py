"""Look-ups: a user with their devices and conversations, users by id, name or prefix (the prefix search may be
down: the exact look-ups still answer), history around a message, search answering 503 while the index is down."""

from __future__ import annotations

import pytest

from tests.unit.admin.conftest import Office
from tidings.admin.biz.model import Device, Role
from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import charts, errors
from tidings.pkg.errors import TidingsError


@pytest.fixture
def people(office: Office) -> Office:
    office.accounts.add(7, "mallory")
    office.accounts.add(8, "malcolm")
    office.chats.add_group(40, [7, 8], [f"m{n}" for n in range(1, 21)])
    office.devices.devices[7] = [Device("s1", "10.0.0.1:9180")]
    return office


async def test_a_user_with_devices_and_conversations(people: Office) -> None:
    viewer = await people.caller(Role.VIEWER)
    detail = await people.lookups.user(viewer, 7)
    assert detail.record.user.username == "mallory"
    assert detail.devices == [Device("s1", "10.0.0.1:9180")]
    assert [c.id for c in detail.conversations] == [40]
    with pytest.raises(TidingsError) as caught:
        await people.lookups.user(viewer, 99)
    assert caught.value.reason == "USER_NOT_FOUND"


async def test_users_by_id_name_and_prefix_even_while_search_is_down(people: Office) -> None:
    viewer = await people.caller(Role.VIEWER)
    assert [r.user.id for r in await people.lookups.users(viewer, "7")] == [7]
    assert [r.user.id for r in await people.lookups.users(viewer, "mal")] == [7, 8]
    people.accounts.search_down = True
    assert [r.user.id for r in await people.lookups.users(viewer, "malcolm")] == [8]
    with pytest.raises(TidingsError) as caught:
        await people.lookups.users(viewer, " ")
    assert caught.value.metadata["field"] == "query"


async def test_history_around_a_message(people: Office) -> None:
    viewer = await people.caller(Role.VIEWER)
    page = await people.lookups.around(viewer, 40, 10)
    assert [m.seq for m in page.messages] == list(range(5, 16))
    assert page.has_more
    assert [m.seq for m in (await people.lookups.around(viewer, 40, 2)).messages] == list(range(1, 8))


async def test_history_around_a_message_of_no_conversation_carries_not_found(people: Office) -> None:
    """Both pages fail alike in the task group: what reaches the HTTP layer carries the reason, not a 500."""
    viewer = await people.caller(Role.VIEWER)
    with pytest.raises(Exception) as failed:  # noqa: PT011 (a task group's failure: checked by what it carries)
        await people.lookups.around(viewer, 4040, 10)
    error = errors.carried(failed.value)
    assert error is not None
    assert chat_errors.is_conversation_not_found(error)


async def test_search_answers_503_while_the_index_is_down_and_look_ups_still_work(people: Office) -> None:
    viewer = await people.caller(Role.VIEWER)
    people.chats.search_down = True
    with pytest.raises(TidingsError) as caught:
        await people.lookups.search(viewer, "pills", None, None, 20)
    assert caught.value.code == 503
    assert caught.value.reason == "SEARCH_UNAVAILABLE"
    assert (await people.lookups.conversation(viewer, 40)).message_count == 20


async def test_stats_need_a_bounded_range(people: Office) -> None:
    viewer = await people.caller(Role.VIEWER)
    assert (await people.overview.days(viewer, 30)).activity == []
    state = await people.overview.pipeline(viewer)
    assert state.lag[0].lag == 3
    assert state.dead_letters[0].count == 1
    with pytest.raises(TidingsError) as caught:
        await people.overview.days(viewer, 0)
    assert caught.value.metadata["field"] == "days"


def test_charts_escape_their_labels_and_scale_to_the_peak() -> None:
    svg = charts.bars("Messages <per> day", [("2026-12-01", 5), ("<b>", 10)])
    assert "<b>" not in svg
    assert "&lt;b&gt;" in svg
    assert "Messages &lt;per&gt; day" in svg
    assert svg.count("<rect") == 2
    assert "no data yet" in charts.bars("Empty", [])
