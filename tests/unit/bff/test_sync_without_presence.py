"""``GET /v1/sync`` while presence (Redis) is unreachable: the snapshot comes without presence, not as an error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from tests.unit.bff.test_http_api import Api
from tidings.bff.biz.model import Presence


class UnreachablePresence:
    async def statuses(self, user_ids: Iterable[int]) -> dict[int, Presence]:
        raise ConnectionError("Redis is unreachable")


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    api = Api()
    yield api
    await api.client.aclose()


async def test_sync_answers_without_presence_when_it_is_unreachable(api: Api) -> None:
    _, alice = await api.user("alice")
    bob_id, _ = await api.user("bob")
    created = await api.client.post("/v1/conversations", json={"kind": "direct", "peer_id": bob_id}, headers=alice)
    assert created.status_code == 201, created.text
    healthy = (await api.client.get("/v1/sync", headers=alice)).json()
    assert healthy["presence"] == {bob_id: "offline"}
    api.presence.statuses = UnreachablePresence().statuses  # type: ignore[method-assign]
    degraded = await api.client.get("/v1/sync", headers=alice)
    assert degraded.status_code == 200, degraded.text
    body = degraded.json()
    assert body["conversations"] == healthy["conversations"]
    assert body["me"] == healthy["me"]
    assert not body.get("presence")
