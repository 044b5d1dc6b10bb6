"""``GrpcDeliverer``: push's deliveries as ``DeliveryService/Deliver`` calls on bff instances."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.api.gateway.v1 import delivery_pb2, gateway_pb2
from tidings.job.biz.push import Delivery
from tidings.realtime.delivery import DeliveryClient


class GrpcDeliverer:
    """Failures come back as ``TidingsError`` (the client's interceptors), which push tells apart by code."""

    def __init__(self, client: DeliveryClient) -> None:
        self._client = client

    async def deliver(self, instance: str, deliveries: Sequence[Delivery[gateway_pb2.Event]]) -> list[str]:
        request = delivery_pb2.DeliverRequest(
            deliveries=[delivery_pb2.Delivery(session_ids=d.session_ids, event=d.event) for d in deliveries]
        )
        response = await self._client.deliver(instance, request)
        return list(response.gone_session_ids)

    async def close(self) -> None:
        await self._client.close()
