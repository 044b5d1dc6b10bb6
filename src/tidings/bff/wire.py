"""Composition root of the bff: builds data -> biz -> service -> server."""

from __future__ import annotations

import grpc
from prometheus_client import REGISTRY

from tidings.bff import server
from tidings.bff.biz.quotas import Quotas
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.biz.usecase import Members, Sync
from tidings.bff.data.account import GrpcAccountRepo
from tidings.bff.data.audiences import audiences
from tidings.bff.data.chat import GrpcChatRepo
from tidings.bff.data.metrics import PrometheusRealtimeMetrics
from tidings.bff.data.presence import RoutePresenceRepo
from tidings.bff.data.relay import GrpcRelay
from tidings.bff.service import web, ws
from tidings.bff.service.delivery import DeliveryServicer
from tidings.bff.service.gateway import GatewayServicer
from tidings.bff.service.gateway import add_to_server as add_gateway_to_server
from tidings.bff.service.http import router
from tidings.gateway.v1 import delivery_pb2, delivery_pb2_grpc, gateway_pb2
from tidings.pkg.app import Module, Server
from tidings.pkg.cache.factory import cache_kit
from tidings.pkg.conf import ModuleConf, RealtimeConf
from tidings.pkg.infra import Infra
from tidings.pkg.middleware.grpc import server_interceptors
from tidings.pkg.ratelimit import MemoryRateLimiter, Rate, RateLimiter, RedisRateLimiter
from tidings.pkg.routes import DeliveryClient, route_table
from tidings.pkg.tokens import JWTCodec
from tidings.pkg.transport.grpc import GrpcServer
from tidings.pkg.transport.http import HttpServer

_UNROUTABLE_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 (these are refused here, not bound)


def instance_address(conf: ModuleConf, realtime: RealtimeConf) -> str:
    """Where the push job reaches this very instance: ``realtime.advertise``, else ``dial``, else the listen
    address. A wildcard host reaches no one in particular, so it is refused with the key to set."""
    if conf.grpc is None:
        raise ValueError("modules.bff.grpc must be set: live connections are delivered to over gRPC")
    address = realtime.advertise or conf.dial or conf.grpc.address
    host = address.rpartition(":")[0].strip("[]")
    if host in _UNROUTABLE_HOSTS:
        raise ValueError(f"realtime.advertise must be set: {address!r} is not an address other processes can dial")
    return address


async def wire(infra: Infra) -> Module:
    conf = infra.settings.modules.bff
    realtime = infra.settings.realtime
    secret = infra.settings.auth.jwt_secret
    accounts = GrpcAccountRepo(
        infra.channel("account"), tokens=JWTCodec(secret.get_secret_value()) if secret is not None else None
    )
    chats = GrpcChatRepo(infra.channel("chat"))
    routes = route_table(infra)
    metrics = PrometheusRealtimeMetrics(REGISTRY)
    fan_out = audiences(await cache_kit(infra, REGISTRY, "bff"), realtime)
    limiter: RateLimiter = (
        RedisRateLimiter(infra.redis(), prefix=f"{realtime.route_prefix}:rl")
        if infra.uses_redis
        else MemoryRateLimiter()
    )
    quotas = Quotas(limiter, infra.settings.limits, typing=Rate(realtime.typing_rate_per_s, realtime.typing_burst))
    hub = Hub(
        instance=instance_address(conf, realtime),
        conf=realtime,
        routes=routes,
        relay=GrpcRelay(DeliveryClient(timeout_s=realtime.io_timeout_s)),
        accounts=accounts,
        chats=chats,
        metrics=metrics,
        request_timeout_s=conf.request_timeout_s,
        audiences=fan_out,
        quotas=quotas,
    )
    frames = Frames(hub, chats)
    checks = [infra.redis_check()] if infra.uses_redis else []
    app = server.http_app(
        checks,
        request_timeout_s=conf.request_timeout_s,
        routers=[
            router(accounts, chats, Sync(accounts, chats, RoutePresenceRepo(routes)), Members(chats, fan_out), quotas),
            ws.router(accounts, hub, frames, metrics, request_timeout_s=conf.request_timeout_s),
        ],
    )
    web.install(app)
    http = HttpServer("bff", app, conf.http)
    gateway = GatewayServicer(accounts, hub, frames, metrics, request_timeout_s=conf.request_timeout_s)
    delivery = DeliveryServicer(hub)

    def register(grpc_server: grpc.aio.Server) -> None:
        add_gateway_to_server(gateway, grpc_server)
        delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(delivery, grpc_server)

    assert conf.grpc is not None  # instance_address checked it
    grpc_server = GrpcServer(
        "bff",
        conf.grpc,
        registrars=[register],
        service_names=[
            gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name,
            delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name,
        ],
        interceptors=server_interceptors(request_timeout_s=conf.request_timeout_s),
    )
    servers: list[Server] = [hub, http, grpc_server]
    urls = {
        "bff http": http.url,
        "chat in the browser": f"{http.url}/",
        "bff websocket": f"{http.url.replace('http', 'ws', 1)}/v1/ws",
        "bff api docs": f"{http.url}/docs",
        "bff metrics": f"{http.url}/metrics",
        "bff grpc": grpc_server.address,
    }
    return Module("bff", servers=servers, urls=urls)
