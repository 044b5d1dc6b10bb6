"""A ban closes the banned user's live connections at once, through the public ports and account's operator call
(as the admin module makes it): account publishes the revocation, the push job finds the user's sessions in the
route table, the bff sends ``session.ended`` and closes them. The bff's own token re-checks are set five minutes
apart, so only the control event can close them within the wait. Runs on separate processes over MariaDB, Redis and
Kafka, and on ``tidings dev``; the latency is printed, never asserted."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.e2e.client import Client, Device, StreamDevice
from tests.e2e.conftest import fresh_database
from tests.e2e.test_realtime import System, start_dev, start_system
from tidings.api.account.v1 import account_pb2, account_pb2_grpc
from tidings.pkg.errors.grpc import from_grpc_error

# Generous: the first event on a fresh consumer group may wait for the group to form.
ENDED_S = 10
ONLY_THE_CONTROL_EVENT = {"TIDINGS_REALTIME__REVERIFY_INTERVAL_S": "300"}
BANNED = "Your account was suspended by an operator."


@pytest.fixture(params=["stack", "dev"])
async def system(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    if request.param == "dev":
        started = await start_dev(tmp_path, ONLY_THE_CONTROL_EVENT)
        try:
            yield started
        finally:
            await started.fleet.close()
        return
    async with fresh_database() as database_url:
        started = await start_system(tmp_path, database_url, bffs=1, env=ONLY_THE_CONTROL_EVENT)
        try:
            yield started
        finally:
            await started.fleet.close()


async def ban(system: System, user_id: str) -> account_pb2.BanUserResponse:
    action = account_pb2.OperatorAction(operator_id=1, reason="end-to-end test: spam")
    async with grpc.aio.insecure_channel(system.account_grpc) as channel:
        request = account_pb2.BanUserRequest(user_id=int(user_id), action=action)
        response: account_pb2.BanUserResponse = await account_pb2_grpc.AccountServiceStub(channel).BanUser(
            request, timeout=10
        )
        return response


@pytest.mark.timeout(180)
async def test_a_ban_ends_the_users_websocket_and_grpc_stream_at_once_and_login_is_refused(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    bff = system.bffs[0]
    client = Client(bff.http_url)
    mallory, bob = await client.register("mallory"), await client.register("bob")
    socket, stream = Device(bff.ws_url, mallory), StreamDevice(bff.grpc_address, mallory)
    bystander = Device(bff.ws_url, bob)
    try:
        for device in (socket, stream, bystander):
            await device.connect()
        started = time.perf_counter()
        banned = await ban(system, mallory.id)
        assert (banned.before.banned, banned.after.banned) == (False, True)
        assert banned.after.user.username == mallory.username

        await socket.wait_closed(ENDED_S)
        socket_s = time.perf_counter() - started
        await stream.wait_closed(ENDED_S)
        stream_s = time.perf_counter() - started
        with capsys.disabled():
            print(f"\nban to closed: WebSocket {socket_s * 1000:.0f} ms, gRPC stream {stream_s * 1000:.0f} ms")

        ended = {"type": "session.ended", "reason": "USER_BANNED", "message": BANNED}
        assert socket.frames[-1] == ended
        assert socket.close_code == 4403
        assert stream.frames[-1] == ended
        assert stream.status is grpc.StatusCode.PERMISSION_DENIED
        assert stream.error is not None
        assert from_grpc_error(stream.error).reason == "USER_BANNED"
        assert bystander.open

        login = await client.http.post(
            "/v1/auth/login", json={"username": mallory.username, "password": "correct horse"}
        )
        assert login.status_code == 403, login.text
        assert login.json()["error"]["reason"] == "USER_BANNED"
    finally:
        for device in (socket, stream, bystander):
            await device.close()
        await client.close()
