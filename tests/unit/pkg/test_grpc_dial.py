"""``dial`` spreads calls over every instance of a target and keeps calling when one goes away: two real gRPC
servers on this machine, each answering its own name."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import grpc
import pytest

from tidings.api.common.v1.errors import unavailable
from tidings.bench.system import free_port
from tidings.pkg.conf import Listen
from tidings.pkg.errors.grpc import to_grpc_status
from tidings.pkg.transport.grpc import SERVICE_SERVER_OPTIONS, SHARD_KEY, GrpcServer, dial

METHOD = "/tidings.test.Who/Name"


def answering(name: str, address: str | None = None) -> GrpcServer:
    async def who(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return name.encode()

    methods = {"Name": grpc.unary_unary_rpc_method_handler(who)}
    handler = grpc.method_handlers_generic_handler("tidings.test.Who", methods)

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handler,))

    port = int(address.rpartition(":")[2]) if address else free_port()
    return GrpcServer(name, Listen(port=port), [register], reflection=False, options=SERVICE_SERVER_OPTIONS)


async def ask(channel: grpc.aio.Channel, times: int, key: str | None = None) -> Counter[str]:
    call = channel.unary_unary(METHOD)
    metadata = ((SHARD_KEY, key),) if key is not None else None
    answers: Counter[str] = Counter()
    for _ in range(times):
        answer = await call(b"", timeout=5, metadata=metadata)
        answers[answer.decode()] += 1
    return answers


async def test_calls_go_round_robin_over_the_instances_and_skip_one_that_stopped() -> None:
    first, second = answering("first"), answering("second")
    await first.start()
    await second.start()
    channel = dial(f"ipv4:{first.address},{second.address}")
    try:
        await channel.channel_ready()
        # Both connect in the background; once both are ready the calls alternate.
        await until(lambda answers: len(answers) == 2, channel)
        assert await ask(channel, 10) == {"first": 5, "second": 5}

        await first.stop()
        assert await ask(channel, 10) == {"second": 10}
    finally:
        await channel.close()
        await first.stop()
        await second.stop()


async def test_an_instance_that_comes_back_gets_calls_again_within_the_reconnect_backoff() -> None:
    first, second = answering("first"), answering("second")
    await second.start()
    channel = dial(f"ipv4:{first.address},{second.address}")
    try:
        assert await ask(channel, 4) == {"second": 4}  # the first is not up yet
        await first.start()
        # Well within 10 s: backoff is capped at 1 s (gRPC's default is 120 s).
        await until(lambda answers: "first" in answers, channel)
    finally:
        await channel.close()
        await first.stop()
        await second.stop()


async def until(done: Callable[[Counter[str]], bool], channel: grpc.aio.Channel, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while not done(await ask(channel, 4)):  # noqa: ASYNC110 - polls the servers, no event to wait on
            await asyncio.sleep(0.05)


async def test_a_keyed_channel_sends_one_key_to_one_instance_and_moves_only_the_keys_of_one_that_stopped() -> None:
    first, second = answering("first"), answering("second")
    await first.start()
    await second.start()
    channel = dial(f"ipv4:{first.address},{second.address}", keyed=True)
    try:
        keys = [str(n) for n in range(16)]
        owners = {}
        for key in keys:
            answers = await ask(channel, 5, key)
            assert len(answers) == 1, f"key {key} answered by {answers}"
            owners[key] = next(iter(answers))
        assert set(owners.values()) == {"first", "second"}  # 16 keys spread over both
        assert len(await ask(channel, 40)) == 2  # calls without a key go to either

        await first.stop()
        for key in keys:
            assert await ask(channel, 3, key) == {"second": 3}
        # Back on its port, the first gets its keys again once the channel reconnected (backoff capped at 1 s).
        first = answering("first", first.address)
        await first.start()
        mine = [key for key, owner in owners.items() if owner == "first"]
        async with asyncio.timeout(10):
            while [(await ask(channel, 1, key)).most_common(1)[0][0] for key in mine] != ["first"] * len(mine):  # noqa: ASYNC110 - polls the servers
                await asyncio.sleep(0.1)
    finally:
        await channel.close()
        await first.stop()
        await second.stop()


@pytest.mark.parametrize("keyed", [False, True], ids=["round-robin", "keyed"])
async def test_a_call_made_while_the_only_instance_restarts_waits_for_it_within_the_retries(keyed: bool) -> None:
    server = answering("only")
    await server.start()
    channel = dial(server.address, keyed=keyed)
    try:
        assert await ask(channel, 1, "k" if keyed else None) == {"only": 1}
        await server.stop()
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await ask(channel, 1, "k" if keyed else None)
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE  # retried, and still nobody there
        server = answering("only", server.address)
        asyncio.get_running_loop().call_later(0.5, lambda: asyncio.ensure_future(server.start()))
        assert await ask(channel, 1, "k" if keyed else None) == {"only": 1}
    finally:
        await channel.close()
        await server.stop()


async def test_a_service_s_own_unavailable_is_an_answer_and_is_not_retried() -> None:
    calls = 0

    async def refuse(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        nonlocal calls
        calls += 1
        await context.abort_with_status(to_grpc_status(unavailable("the index is down")))
        raise AssertionError("abort returned")

    methods = {"Name": grpc.unary_unary_rpc_method_handler(refuse)}
    handler = grpc.method_handlers_generic_handler("tidings.test.Who", methods)
    server = GrpcServer("refusing", Listen(port=free_port()), [lambda s: s.add_generic_rpc_handlers((handler,))])
    await server.start()
    channel = dial(server.address)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ask(channel, 1)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert calls == 1
    finally:
        await channel.close()
        await server.stop()


@pytest.mark.parametrize("target", ["127.0.0.1:{port}", "dns:///localhost:{port}", "ipv4:127.0.0.1:{port}"])
async def test_every_spelling_of_one_instance_dials(target: str) -> None:
    server = answering("only")
    await server.start()
    port = server.address.rpartition(":")[2]
    channel = dial(target.format(port=port))
    try:
        assert await ask(channel, 2) == {"only": 2}
    finally:
        await channel.close()
        await server.stop()
