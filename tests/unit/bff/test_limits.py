"""Rate limits as clients meet them: 429 RATE_LIMITED with Retry-After for sends, failed logins of a username
(the same whether it exists or not, and before any password hashing), typing and connections per user."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.unit.bff.fakes import FakeAccounts, FakeChats, FakePresence
from tests.unit.bff.realtime.harness import Cluster, cluster_of
from tidings.bff import server
from tidings.bff.biz.usecase import Sync
from tidings.bff.service.http import router
from tidings.bff.wire import quotas
from tidings.conf import LimitsConf, RealtimeConf
from tidings.pkg import errors, log
from tidings.pkg.ratelimit import MemoryRateLimiter, Rate, RateLimiter, Verdict

LIMITS = LimitsConf(
    send_per_s=1,
    send_burst=3,
    login_failures=3,
    login_backoff_s=60,
    connections_per_user=2,
    address_failures=6,
    address_backoff_s=60,
    registrations_burst=4,
)


class Api:
    def __init__(self, limiter: RateLimiter | None = None, conf: LimitsConf = LIMITS) -> None:
        self.accounts = FakeAccounts()
        self.chats = FakeChats()
        limits = quotas(limiter or MemoryRateLimiter(), conf, RealtimeConf())
        sync = Sync(self.accounts, self.chats, FakePresence(), log.get("bff.sync"))
        self.app = server.http_app([], request_timeout_s=5, routers=[router(self.accounts, self.chats, sync, limits)])
        self.client = self.from_address("127.0.0.1")

    def from_address(self, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://bff")

    async def user(self, name: str) -> dict[str, str]:
        answer = await self.client.post("/v1/auth/register", json={"username": name, "password": "correct horse"})
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def login(self, name: str, password: str) -> httpx.Response:
        return await self.client.post("/v1/auth/login", json={"username": name, "password": password})


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    api = Api()
    yield api
    await api.client.aclose()


async def test_sends_beyond_the_burst_are_429_with_retry_after(api: Api) -> None:
    alice = await api.user("alice")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
    path = f"/v1/conversations/{conv['id']}/messages"
    answers = [
        await api.client.post(path, json={"client_msg_id": f"c-{n}", "text": "hi"}, headers=alice) for n in range(5)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    limited = answers[3]
    assert limited.json()["error"]["reason"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) >= 1
    assert (limited.headers["X-RateLimit-Limit"], limited.headers["X-RateLimit-Remaining"]) == ("3", "0")
    bob = await api.user("bob")  # per user: others are not held back
    bob_conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=bob)).json()
    sent = await api.client.post(
        f"/v1/conversations/{bob_conv['id']}/messages", json={"client_msg_id": "b-1", "text": "hi"}, headers=bob
    )
    assert sent.status_code == 201


@pytest.mark.parametrize("username", ["alice", "nobody_here"])
async def test_failed_logins_of_a_username_are_limited_alike_whether_or_not_it_exists(api: Api, username: str) -> None:
    await api.user("alice")
    answers = [await api.login(username, "wrong password") for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    attempts = api.accounts.login_attempts
    limited = await api.login(username, "correct horse")
    assert (limited.status_code, limited.json()["error"]["reason"]) == (429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) > 1
    assert api.accounts.login_attempts == attempts  # refused before any password was checked
    assert (await api.login(username.upper(), "correct horse")).status_code == 429  # usernames compare without case
    assert (await api.login("carol", "whatever pw")).status_code == 401  # other usernames are not affected


async def test_successful_logins_count_nothing(api: Api) -> None:
    await api.user("alice")
    assert all([(await api.login("alice", "correct horse")).status_code == 200 for _ in range(10)])


async def test_a_limiter_that_fails_lets_requests_through() -> None:
    class Broken:
        async def hit(self, key: str, rate: Rate, cost: int = 1) -> Verdict:
            raise ConnectionError("redis is down")

    api = Api(Broken())
    await api.user("alice")
    assert [(await api.login("alice", "wrong password")).status_code for _ in range(5)] == [401] * 5
    await api.client.aclose()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async for cluster in cluster_of():
        yield cluster


async def test_connections_of_one_user_are_limited_across_instances(cluster: Cluster) -> None:
    a, b = cluster.hub("a:1"), cluster.hub("b:1")
    alice, token = cluster.user("alice")
    bob, bob_token = cluster.user("bob")
    limit = cluster.quotas.connections_per_user
    assert limit is not None
    for n in range(limit):
        await a.admit(alice)
        await cluster.connect(a if n % 2 else b, token)
    with pytest.raises(errors.TidingsError) as refused:
        await b.admit(alice)
    assert refused.value.code == 429
    assert "retry_after_s" in refused.value.metadata
    await b.admit(bob)
    await cluster.connect(b, bob_token)


async def test_failed_logins_from_one_address_are_limited_whatever_the_usernames(api: Api) -> None:
    await api.user("alice")
    answers = [await api.login(f"guess{n}", "wrong password") for n in range(6)]
    assert [a.status_code for a in answers] == [401] * 6
    limited = await api.login("alice", "correct horse")
    assert (limited.status_code, limited.json()["error"]["reason"]) == (429, "RATE_LIMITED")
    assert limited.headers["X-RateLimit-Limit"] == "6"
    elsewhere = api.from_address("198.51.100.7")
    assert (await elsewhere.post("/v1/auth/login", json={"username": "alice", "password": "correct horse"})).is_success


async def test_the_wait_grows_with_the_failures() -> None:
    clock = [0]
    conf = LimitsConf(login_failures=2, login_backoff_s=10, slow_down_after=3, address_failures=1000)
    api = Api(MemoryRateLimiter(clock_us=lambda: clock[0]), conf)
    waits = []
    for _ in range(40):
        answer = await api.login("mallory", "wrong password")
        if answer.status_code == 429:
            waits.append(int(answer.headers["Retry-After"]))
            clock[0] += waits[-1] * 1_000_000
    assert waits[0] == 10
    assert max(waits) > 10  # after slow_down_after times the failures, each further attempt waits longer
    assert waits == sorted(waits)


async def test_refused_refresh_tokens_from_one_address_are_limited(api: Api) -> None:
    await api.user("alice")
    answers = [await api.client.post("/v1/auth/refresh", json={"refresh_token": f"forged-{n}"}) for n in range(6)]
    assert [a.status_code for a in answers] == [401] * 6
    limited = await api.client.post("/v1/auth/refresh", json={"refresh_token": "refresh-1"})
    assert (limited.status_code, limited.json()["error"]["reason"]) == (429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) >= 1


async def test_registrations_from_one_address_are_limited(api: Api) -> None:
    answers = [
        await api.client.post("/v1/auth/register", json={"username": f"user{n}", "password": "correct horse"})
        for n in range(5)
    ]
    assert [a.status_code for a in answers] == [201] * 4 + [429]
    assert answers[-1].json()["error"]["reason"] == "RATE_LIMITED"
    elsewhere = api.from_address("198.51.100.7")
    answer = await elsewhere.post("/v1/auth/register", json={"username": "user9", "password": "correct horse"})
    assert answer.status_code == 201
