"""``tidings.gateway.v1.DeliveryService/Deliver``: the push job (and other bff instances) hand this instance the
events for the sessions connected to it.

Semantics: every event is queued on each named session's outbox at once, without waiting for any socket; a
session whose outbox is full is closed as a slow consumer. The answer names the sessions that are not connected
here (never were, closed, or just closed for being slow) so the caller can prune their routes. A batch with an
event this server cannot read is refused whole (400), before anything is queued.
"""

from __future__ import annotations

import grpc

from tidings.api.gateway.v1 import delivery_pb2 as pb
from tidings.api.gateway.v1 import delivery_pb2_grpc as pb_grpc
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.codec import event_from_pb
from tidings.bff.service import gateway_codec
from tidings.pkg import errors
from tidings.pkg.errors import FieldViolation


class DeliveryServicer(pb_grpc.DeliveryServiceServicer):
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def Deliver(self, request: pb.DeliverRequest, context: grpc.aio.ServicerContext) -> pb.DeliverResponse:
        envelopes = []
        for index, delivery in enumerate(request.deliveries):
            try:
                event = event_from_pb(delivery.event)
            except ValueError as exc:
                violation = FieldViolation(f"deliveries.{index}.event", str(exc))
                raise errors.invalid_fields([violation]) from None
            # gRPC streams send the event as it came: no re-encoding per session.
            envelopes.append(gateway_codec.envelope(event, delivery.event))
        gone: dict[str, None] = {}
        for delivery, envelope in zip(request.deliveries, envelopes, strict=True):
            gone.update(dict.fromkeys(self._hub.deliver(delivery.session_ids, envelope)))
        return pb.DeliverResponse(gone_session_ids=list(gone))
