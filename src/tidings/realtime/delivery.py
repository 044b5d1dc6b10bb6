"""How a live connection is reached: ``Deliver`` on the bff instance that holds it (the route table names it)."""

from __future__ import annotations

from collections import OrderedDict

import grpc

from tidings.api.gateway.v1 import delivery_pb2, delivery_pb2_grpc
from tidings.pkg.middleware.grpc import SECRET_METADATA, client_interceptors


class DeliveryClient:
    """``DeliveryService/Deliver`` on bff instances' internal listeners by address: one channel per instance,
    opened on first use, the least recently used closed beyond ``max_channels``; every call bounded by
    ``timeout_s`` and carrying the internal listeners' shared ``secret``."""

    def __init__(self, *, timeout_s: float, secret: str, max_channels: int = 256) -> None:
        self._timeout_s = timeout_s
        self._metadata = ((SECRET_METADATA, secret),)
        self._max_channels = max_channels
        self._stubs: OrderedDict[str, tuple[grpc.aio.Channel, delivery_pb2_grpc.DeliveryServiceStub]] = OrderedDict()

    async def deliver(self, instance: str, request: delivery_pb2.DeliverRequest) -> delivery_pb2.DeliverResponse:
        """Hand ``request`` to ``instance``; a failure raises ``TidingsError`` (UNAVAILABLE when it is down)."""
        stub = await self._stub(instance)
        response: delivery_pb2.DeliverResponse = await stub.Deliver(
            request, timeout=self._timeout_s, metadata=self._metadata
        )
        return response

    async def _stub(self, instance: str) -> delivery_pb2_grpc.DeliveryServiceStub:
        if instance in self._stubs:
            self._stubs.move_to_end(instance)
            return self._stubs[instance][1]
        channel = grpc.aio.insecure_channel(instance, interceptors=client_interceptors())
        stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        self._stubs[instance] = (channel, stub)
        while len(self._stubs) > self._max_channels:
            _, (old, _) = self._stubs.popitem(last=False)
            await old.close(grace=1.0)
        return stub

    async def close(self) -> None:
        stubs, self._stubs = self._stubs, OrderedDict()
        for channel, _ in stubs.values():
            await channel.close()
