"""``GrpcUserDirectory``: the account service over gRPC, as chat needs it (users exist? blocked?).

The channel's client middleware turns failures into ``TidingsError`` and gives each call the time the current
request has left; ``timeout_s`` bounds calls made outside any request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc

from tidings.api.account.v1 import account_pb2, account_pb2_grpc

# BatchGetUsers takes at most this many ids (its contract), and a wide check runs a few of them at once.
_BATCH = 500
_PARALLEL = 4


class GrpcUserDirectory:
    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = 5.0) -> None:
        self._stub = account_pb2_grpc.AccountServiceStub(channel)
        self._timeout_s = timeout_s

    async def existing(self, user_ids: Sequence[int]) -> set[int]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        gate = asyncio.Semaphore(_PARALLEL)

        async def batch(chunk: list[int]) -> set[int]:
            async with gate:
                answer = await self._stub.BatchGetUsers(
                    account_pb2.BatchGetUsersRequest(user_ids=chunk), timeout=self._timeout_s
                )
            return {user.id for user in answer.users}

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(batch(ids[i : i + _BATCH])) for i in range(0, len(ids), _BATCH)]
        except BaseExceptionGroup as failed:
            # The first failure as it is (a TidingsError keeps its reason); the other calls were cancelled.
            raise failed.exceptions[0] from None
        return set().union(*(task.result() for task in tasks))

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        blocked: list[bool] = []
        for start in range(0, len(pairs), _BATCH):
            request = account_pb2.CheckBlockedPairsRequest(
                pairs=[
                    account_pb2.CheckBlockedRequest(user_id=a, other_user_id=b)
                    for a, b in pairs[start : start + _BATCH]
                ]
            )
            blocked += (await self._stub.CheckBlockedPairs(request, timeout=self._timeout_s)).blocked
        return blocked
