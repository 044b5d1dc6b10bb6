"""The back office's HTTP API on the use cases and fakes: answers the fuzzer once found broken stay within the
contract (a 4xx with the reason, never a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.unit.admin.conftest import PASSWORD, Office
from tidings.admin.biz.model import Role
from tidings.admin.service.http import router
from tidings.pkg.edge import MAX_ID
from tidings.pkg.transport.http import api_app


@pytest.fixture
async def admin(office: Office) -> AsyncIterator[httpx.AsyncClient]:
    office.accounts.add(7, "mallory")
    office.chats.add_group(40, [7], [f"m{n}" for n in range(1, 21)])
    routes = router(
        office.operators, office.lookups, office.moderation, office.audited, office.overview, secure_cookies=False
    )
    app = api_app("back office", "test", [], request_timeout_s=5, routers=[routes])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        await office.operators.create("viewer1", PASSWORD, Role.VIEWER)
        login = {"username": "viewer1", "password": PASSWORD, "bearer": True}
        token = (await client.post("/admin/v1/auth/login", json=login)).json()["token"]
        client.headers["authorization"] = f"Bearer {token}"
        yield client


async def test_history_around_a_message_of_no_conversation_is_404(admin: httpx.AsyncClient) -> None:
    answer = await admin.get("/admin/v1/conversations/4040/messages", params={"around_seq": 10})
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["reason"] == "CONVERSATION_NOT_FOUND"
    found = await admin.get("/admin/v1/conversations/40/messages", params={"around_seq": 10})
    assert [m["seq"] for m in found.json()["messages"]] == list(range(5, 16))


async def test_history_around_the_largest_id_is_400_naming_the_field(admin: httpx.AsyncClient) -> None:
    """The page after it would start past the largest seq a message can have."""
    answer = await admin.get("/admin/v1/conversations/40/messages", params={"around_seq": MAX_ID})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["metadata"]["field"] == "around_seq"
