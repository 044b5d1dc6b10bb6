"""``Relay`` over gRPC: the events this instance originates (typing, presence) to the other bff instances."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.api.gateway.v1 import delivery_pb2
from tidings.bff.biz.realtime.events import Event
from tidings.bff.codec import event_to_pb
from tidings.realtime.delivery import DeliveryClient


class GrpcRelay:
    def __init__(self, client: DeliveryClient) -> None:
        self._client = client

    async def deliver(self, instance: str, deliveries: Sequence[tuple[Sequence[str], Event]]) -> list[str]:
        request = delivery_pb2.DeliverRequest(
            deliveries=[
                delivery_pb2.Delivery(session_ids=list(session_ids), event=event_to_pb(event))
                for session_ids, event in deliveries
            ]
        )
        return list((await self._client.deliver(instance, request)).gone_session_ids)

    async def close(self) -> None:
        await self._client.close()
