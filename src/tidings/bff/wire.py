"""Composition root of the bff: builds data -> biz -> service -> server."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tidings.api.gateway.v1 import delivery_pb2, delivery_pb2_grpc, gateway_pb2
from tidings.bff import server
from tidings.bff.biz.quotas import QuotaOptions, Quotas, Steps
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub, RealtimeOptions
from tidings.bff.biz.usecase import Members, Sync
from tidings.bff.data.account import GrpcAccountRepo
from tidings.bff.data.audiences import audiences
from tidings.bff.data.chat import GrpcChatRepo
from tidings.bff.data.metrics import PrometheusRealtimeMetrics
from tidings.bff.data.presence import RoutePresenceRepo
from tidings.bff.data.relay import GrpcRelay
from tidings.bff.service import ws
from tidings.bff.service.connection import Connections
from tidings.bff.service.delivery import DeliveryServicer
from tidings.bff.service.gateway import GatewayServicer
from tidings.bff.service.gateway import add_to_server as add_gateway_to_server
from tidings.bff.service.http import router
from tidings.bootstrap import Infra
from tidings.conf import BffConf, LimitsConf, RealtimeConf
from tidings.pkg import log
from tidings.pkg.app import Module, Server
from tidings.pkg.middleware.grpc import server_interceptors
from tidings.pkg.ratelimit import Rate, RateLimiter
from tidings.pkg.transport import web
from tidings.pkg.transport.grpc import GrpcServer
from tidings.pkg.transport.guard import ConnectionGuard
from tidings.pkg.transport.http import HttpServer, ops_server
from tidings.realtime.delivery import DeliveryClient
from tidings.service.account.token_codec import JWTCodec

# A public gRPC connection with no call in flight for this long is closed (clients' channels reconnect on use).
PUBLIC_GRPC_IDLE_MS = 5 * 60 * 1000
_UNROUTABLE_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 (these are refused here, not bound)


def instance_address(conf: BffConf, realtime: RealtimeConf) -> str:
    """Where the push job (and other bff instances) reach this very instance's internal gRPC listener:
    ``realtime.advertise``, else the internal listen address. A wildcard host reaches no one in particular, so it
    is refused with the key to set."""
    address = realtime.advertise or conf.internal_grpc.address
    host = address.rpartition(":")[0].strip("[]")
    if host in _UNROUTABLE_HOSTS:
        raise ValueError(f"realtime.advertise must be set: {address!r} is not an address other processes can dial")
    return address


def realtime_options(conf: RealtimeConf) -> RealtimeOptions:
    return RealtimeOptions(
        queue_size=conf.queue_size,
        idle_timeout_s=conf.idle_timeout_s,
        route_ttl_s=conf.route_ttl_s,
        reverify_interval_s=conf.reverify_interval_s,
        members_cache_s=conf.members_cache_s,
        peers_cache_s=conf.peers_cache_s,
        presence_max_peers=conf.presence_max_peers,
        presence_push_max_members=conf.presence_push_max_members,
        io_timeout_s=conf.io_timeout_s,
    )


def quotas(limiter: RateLimiter, limits: LimitsConf, realtime: RealtimeConf) -> Quotas:
    """The per-user limits of the ``limits`` settings (and ``realtime``'s for typing) on ``limiter``."""
    options = QuotaOptions(
        send=Rate(limits.send_per_s, limits.send_burst),
        typing=Rate(realtime.typing_rate_per_s, realtime.typing_burst),
        login=Steps.growing(limits.login_failures, limits.login_backoff_s, limits.slow_down_after),
        address=Steps.growing(limits.address_failures, limits.address_backoff_s, limits.slow_down_after),
        registration=Rate(1 / limits.registration_interval_s, limits.registrations_burst),
        connections_per_user=limits.connections_per_user,
        enabled=limits.enabled,
    )
    return Quotas(limiter, options, log.get("bff.limits"))


async def wire(infra: Infra) -> Module:
    conf = infra.settings.modules.bff
    if conf.grpc is None:
        raise ValueError("modules.bff.grpc must be set: native clients connect over gRPC")
    realtime = infra.settings.realtime
    secret = infra.settings.auth.jwt_secret
    internal_secret = infra.settings.auth.require_internal_secret()
    accounts = GrpcAccountRepo(
        infra.channel("account"), tokens=JWTCodec(secret.get_secret_value()) if secret is not None else None
    )
    chats = GrpcChatRepo(infra.channel("chat", keyed=True), send_shards=conf.chat_send_shards)
    routes = infra.route_table()
    metrics = PrometheusRealtimeMetrics(REGISTRY)
    fan_out = audiences(await infra.cache_kit(REGISTRY, "bff"), realtime)
    limits = quotas(infra.rate_limiter(f"{realtime.route_prefix}:rl"), infra.settings.limits, realtime)
    hub = Hub(
        instance=instance_address(conf, realtime),
        options=realtime_options(realtime),
        routes=routes,
        relay=GrpcRelay(DeliveryClient(timeout_s=realtime.io_timeout_s, secret=internal_secret)),
        accounts=accounts,
        chats=chats,
        metrics=metrics,
        quotas=limits,
        request_timeout_s=conf.request_timeout_s,
        logger=log.get("realtime"),
        audiences=fan_out,
    )
    frames = Frames(hub, chats, accounts)
    connections = Connections(
        accounts,
        hub,
        frames,
        metrics,
        request_timeout_s=conf.request_timeout_s,
        max_frame_bytes=realtime.max_frame_bytes,
    )
    checks = infra.redis_checks()
    app = server.http_app(
        checks,
        request_timeout_s=conf.request_timeout_s,
        docs=conf.docs,
        cors_origins=conf.cors_origins,
        routers=[
            router(
                accounts,
                chats,
                Sync(accounts, chats, RoutePresenceRepo(routes), log.get("bff.sync")),
                limits,
                Members(chats, fan_out),
            ),
            ws.router(connections),
        ],
    )
    web.install(app, "tidings.bff")
    # Slow clients (headers, bodies) are cut off and one address holds a bounded number of connections.
    guard = ConnectionGuard(
        header_timeout_s=conf.header_timeout_s,
        body_timeout_s=conf.body_timeout_s,
        max_per_client=conf.max_connections_per_client,
    )
    http = HttpServer(
        "bff",
        server.public(app),
        conf.http,
        # An oversized WebSocket frame is refused by the server before it is buffered, not read and then refused.
        ws_max_size=realtime.max_frame_bytes,
        guard=guard,
        keep_alive_s=conf.keep_alive_s,
        trusted_proxies=conf.trusted_proxies,
    )
    ops = ops_server("bff metrics", conf.metrics, checks)
    gateway = GatewayServicer(connections)
    delivery = DeliveryServicer(hub)

    # Public: native clients' streams only; their trace context is linked, not continued.
    public_grpc = GrpcServer(
        "bff",
        conf.grpc,
        registrars=[lambda grpc_server: add_gateway_to_server(gateway, grpc_server)],
        service_names=[gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name],
        interceptors=server_interceptors(request_timeout_s=conf.request_timeout_s, trust_trace_context=False),
        reflection=conf.reflection,
        # A connection must complete its HTTP/2 handshake (the client's SETTINGS) as soon as an HTTP request must
        # send its headers (grpc's default allows 120 s); one without a call for five minutes is closed.
        options=[
            ("grpc.server_handshake_timeout_ms", int(conf.header_timeout_s * 1000)),
            ("grpc.max_connection_idle_ms", PUBLIC_GRPC_IDLE_MS),
        ],
    )
    # Internal: Deliver from the push job and other bff instances, each call proven by the shared secret.
    internal_grpc = GrpcServer(
        "bff internal",
        conf.internal_grpc,
        registrars=[lambda grpc_server: delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(delivery, grpc_server)],
        service_names=[delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name],
        interceptors=server_interceptors(request_timeout_s=conf.request_timeout_s, shared_secret=internal_secret),
        reflection=False,
    )
    servers: list[Server] = [hub, http, ops, internal_grpc, public_grpc]
    urls = {
        "bff http": http.url,
        "chat in the browser": f"{http.url}/",
        "bff websocket": f"{http.url.replace('http', 'ws', 1)}/v1/ws",
        "bff api (OpenAPI)": f"{http.url}/openapi.json",
        "bff grpc": public_grpc.address,
        "bff internal grpc": internal_grpc.address,
        "bff metrics": f"{ops.url}/metrics",
    }
    if conf.docs:
        urls["bff api docs"] = f"{http.url}/docs"
    return Module("bff", servers=servers, urls=urls)
