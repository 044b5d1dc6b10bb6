"""gRPC on grpc.aio: serving with the standard health service and (where wanted) reflection, and dialing another
module's instances with the calls spread over them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from tidings.pkg.conf import Listen

Registrar = Callable[[grpc.aio.Server], None]

# Calls go round-robin over every address the target names or resolves to (the default, pick_first, would send all
# of a process's calls to one instance). An instance that goes away is skipped at once, and dialed again within
# ``MAX_RECONNECT_BACKOFF_MS`` of coming back (gRPC's default waits up to two minutes): a rolling restart then finds
# the instance restarted before it has the traffic of the next one to take.
MAX_RECONNECT_BACKOFF_MS = 1_000
# A call that finds no instance to take it (UNAVAILABLE: the only one restarting, all of them between two reconnect
# attempts) is made again by gRPC, within the call's deadline, up to three times over at most 1.75 s (backoff
# drawn at random below 0.25, 0.5, 1 s), instead of failing at once. UNAVAILABLE means the call was most likely
# not handled; a retry of one that was is what a client would do anyway (sends are idempotent by client_msg_id).
_RETRY = {
    "name": [{}],
    "retryPolicy": {
        "maxAttempts": 4,
        "initialBackoff": "0.25s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    },
}
_ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [_RETRY]})
# A keyed channel (``dial(..., keyed=True)``) sends every call carrying this metadata key with the same value to the
# same instance while the set of instances stays the same (gRPC's ring_hash policy, hashing the value), and calls
# without it to an instance at random; when an instance goes away, only its keys move, to the next on the ring.
SHARD_KEY = "tidings-shard"
_RING_HASH = json.dumps(
    {
        "loadBalancingConfig": [{"ring_hash_experimental": {"requestHashHeader": SHARD_KEY}}],
        "methodConfig": [_RETRY],
    }
)
# grpcio (1.85) reads a ring_hash's ``requestHashHeader`` (gRFC A76: ring hash without xDS) only with this set; it is
# read when a channel's config is parsed, so setting it before the first keyed channel is enough.
os.environ.setdefault("GRPC_EXPERIMENTAL_RING_HASH_SET_REQUEST_HASH_KEY", "true")
# A service's server closes each connection (GOAWAY, after its calls finish) once it is this old, so a client
# dialing a DNS name resolves it again and spreads onto instances started since (a scaled-out Deployment).
MAX_CONNECTION_AGE_MS = 300_000
MAX_CONNECTION_AGE_GRACE_MS = 30_000
SERVICE_SERVER_OPTIONS = (
    ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
    ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
)


def dial(
    target: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = (), *, keyed: bool = False
) -> grpc.aio.Channel:
    """A channel to every instance ``target`` names: ``host:port`` (each address the name resolves to),
    ``dns:///name:port``, or a fixed list ``ipv4:host1:port1,host2:port2``. Calls go round-robin over them; on a
    ``keyed`` channel, those with the same ``SHARD_KEY`` metadata go to one instance."""
    options = [
        ("grpc.service_config", _RING_HASH if keyed else _ROUND_ROBIN),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]
    return grpc.aio.insecure_channel(target, options=options, interceptors=list(interceptors))


class GrpcServer:
    """Serves the registered services on ``listen``; ``stop`` refuses new calls and lets running ones finish."""

    def __init__(
        self,
        name: str,
        listen: Listen,
        registrars: Sequence[Registrar],
        *,
        service_names: Sequence[str] = (),
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        drain_timeout_s: float = 5.0,
        reflection: bool = True,
        options: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.name = name
        self._listen = listen
        self._registrars = list(registrars)
        self._service_names = list(service_names)
        self._interceptors = list(interceptors)
        self._drain_timeout_s = drain_timeout_s
        # Reflection lists every service to whoever asks: fine between our own processes, off on public ports.
        self._reflection = reflection
        # grpc core channel arguments of the server (timeouts for public ports).
        self._options = list(options)
        self._server: grpc.aio.Server | None = None
        self._health = HealthServicer()

    @property
    def address(self) -> str:
        return self._listen.address

    async def start(self) -> None:
        server = grpc.aio.server(interceptors=self._interceptors, options=self._options)
        for register in self._registrars:
            register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if self._reflection:
            reflection.enable_server_reflection(
                [
                    *self._service_names,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ],
                server,
            )
        try:
            port = server.add_insecure_port(self._listen.address)
        except RuntimeError:
            port = 0
        if port == 0:
            raise OSError(f"{self.name}: cannot listen on {self._listen.address}")
        await server.start()
        for service in ("", *self._service_names):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._server = server

    async def stop(self) -> None:
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace=self._drain_timeout_s)
        self._server = None
