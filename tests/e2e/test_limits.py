"""Rate limits through the public ports, on both shapes of the system (in-process and Redis limiters): a send
flood, a wrong-password flood on one username, a flood of guessed usernames and forged refresh tokens from one
address, and a connection flood of one user are each cut off with 429."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.client import Client
from tests.e2e.fleet import Fleet
from tidings.conf import LimitsConf

DEFAULTS = LimitsConf()


async def test_a_send_flood_of_one_user_is_cut_off_with_429_and_retry_after(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    answers = await asyncio.gather(*(client.send(alice, conv["id"], f"flood {n}") for n in range(250)))
    codes = [answer.status_code for answer in answers]
    assert set(codes) <= {201, 429}, {a.status_code: a.text for a in answers}
    accepted = codes.count(201)
    assert DEFAULTS.send_burst <= accepted < 250
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert limited.json()["error"]["reason"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert (await client.send(bob, conv["id"], "others are not held back")).status_code == 201


async def test_wrong_passwords_for_one_username_are_cut_off_whether_or_not_it_exists(
    fleet: Fleet, client: Client
) -> None:
    alice = await client.register("alice")
    for username in (alice.username, f"nobody_{uuid.uuid4().hex[:12]}"):
        wrong = [
            await client.http.post("/v1/auth/login", json={"username": username, "password": "not the password"})
            for _ in range(DEFAULTS.login_failures)
        ]
        assert [answer.status_code for answer in wrong] == [401] * DEFAULTS.login_failures
        limited = await client.http.post("/v1/auth/login", json={"username": username, "password": "correct horse"})
        assert (limited.status_code, limited.json()["error"]["reason"]) == (429, "RATE_LIMITED"), limited.text
        assert int(limited.headers["retry-after"]) > 1
    assert (await client.http.get("/v1/me", headers=alice.headers)).status_code == 200


async def test_guesses_from_one_address_are_cut_off_across_usernames_and_refresh_tokens(
    fleet: Fleet, client: Client
) -> None:
    alice = await client.register("alice")
    # One after another, and mostly forged refresh tokens (no password hashing): the whole limit is spent in well
    # under the time one failure takes to be forgiven, however busy the machine.
    guesses = 5
    for n in range(guesses):
        guess = await client.http.post(
            "/v1/auth/login", json={"username": f"guess_{n}", "password": "not the password"}
        )
        assert guess.status_code == 401, guess.text
    for n in range(DEFAULTS.address_failures - guesses):
        forged = await client.http.post("/v1/auth/refresh", json={"refresh_token": f"forged-{n}"})
        assert forged.status_code == 401, forged.text
    forged = await client.http.post("/v1/auth/refresh", json={"refresh_token": "forged"})
    assert (forged.status_code, forged.json()["error"]["reason"]) == (429, "RATE_LIMITED"), forged.text
    limited = await client.http.post("/v1/auth/login", json={"username": alice.username, "password": "correct horse"})
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert (await client.http.get("/v1/me", headers=alice.headers)).status_code == 200


async def test_a_user_opening_too_many_websockets_is_refused_with_429(fleet: Fleet, client: Client) -> None:
    alice = await client.register("alice")
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    url = f"ws://127.0.0.1:8080/v1/ws?token={token}"
    sockets = [await connect(url) for _ in range(DEFAULTS.connections_per_user)]
    try:
        for socket in sockets:
            assert '"ready"' in str(await socket.recv())
        with pytest.raises(InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 429
        assert int(refused.value.response.headers["retry-after"]) >= 1
    finally:
        for socket in sockets:
            await socket.close()
