"""Composition root of the bff: builds data -> biz -> service -> server."""

from __future__ import annotations

from tidings.bff import server
from tidings.bff.biz.ports import PresenceRepo
from tidings.bff.biz.usecase import Sync
from tidings.bff.data.account import GrpcAccountRepo
from tidings.bff.data.chat import GrpcChatRepo
from tidings.bff.data.presence import LocalPresenceRepo, RedisPresenceRepo
from tidings.bff.service.http import router
from tidings.pkg.app import Module, Server
from tidings.pkg.infra import Infra
from tidings.pkg.middleware.grpc import server_interceptors
from tidings.pkg.transport.grpc import GrpcServer
from tidings.pkg.transport.http import HttpServer


async def wire(infra: Infra) -> Module:
    conf = infra.settings.modules.bff
    accounts = GrpcAccountRepo(infra.channel("account"))
    chats = GrpcChatRepo(infra.channel("chat"))
    presence: PresenceRepo = RedisPresenceRepo(infra.redis()) if infra.uses_redis else LocalPresenceRepo()
    checks = [infra.redis_check()] if infra.uses_redis else []
    app = server.http_app(
        checks,
        request_timeout_s=conf.request_timeout_s,
        routers=[router(accounts, chats, Sync(accounts, chats, presence))],
    )
    http = HttpServer("bff", app, conf.http)
    servers: list[Server] = [http]
    urls = {"bff http": http.url, "bff api docs": f"{http.url}/docs", "bff metrics": f"{http.url}/metrics"}
    if conf.grpc is not None:
        interceptors = server_interceptors(request_timeout_s=conf.request_timeout_s)
        grpc = GrpcServer("bff", conf.grpc, registrars=[], interceptors=interceptors)
        servers.append(grpc)
        urls["bff grpc"] = grpc.address
    return Module("bff", servers=servers, urls=urls)
