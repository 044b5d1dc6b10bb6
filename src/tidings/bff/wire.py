"""Composition root of the bff: builds data -> biz -> service -> server."""

from __future__ import annotations

from tidings.bff import server
from tidings.pkg.app import Module, Server
from tidings.pkg.infra import Infra
from tidings.pkg.middleware.grpc import server_interceptors
from tidings.pkg.transport.grpc import GrpcServer
from tidings.pkg.transport.http import HttpServer


async def wire(infra: Infra) -> Module:
    conf = infra.settings.modules.bff
    http = HttpServer("bff", server.http_app(checks=[], request_timeout_s=conf.request_timeout_s), conf.http)
    servers: list[Server] = [http]
    urls = {"bff http": http.url, "bff metrics": f"{http.url}/metrics"}
    if conf.grpc is not None:
        interceptors = server_interceptors(request_timeout_s=conf.request_timeout_s)
        grpc = GrpcServer("bff", conf.grpc, registrars=[], interceptors=interceptors)
        servers.append(grpc)
        urls["bff grpc"] = grpc.address
    return Module("bff", servers=servers, urls=urls)
