"""Shapes of module that recur: a gRPC service with an operations HTTP port, or a worker with only the latter."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.pkg.app import Module, Server
from tidings.pkg.conf import ModuleConf
from tidings.pkg.health import Check
from tidings.pkg.middleware.grpc import server_interceptors
from tidings.pkg.transport.grpc import SERVICE_SERVER_OPTIONS, GrpcServer, Registrar
from tidings.pkg.transport.http import ops_server


def grpc_service(
    name: str,
    conf: ModuleConf,
    checks: Sequence[Check],
    *,
    registrars: Sequence[Registrar] = (),
    service_names: Sequence[str] = (),
) -> Module:
    """A domain service: its API on gRPC, health and metrics on HTTP."""
    if conf.grpc is None:
        raise ValueError(f"modules.{name}.grpc must be set: {name} serves gRPC")
    grpc = GrpcServer(
        name,
        conf.grpc,
        registrars,
        service_names=service_names,
        interceptors=server_interceptors(request_timeout_s=conf.request_timeout_s),
        options=SERVICE_SERVER_OPTIONS,
    )
    http = ops_server(name, conf.http, checks)
    return Module(
        name,
        servers=[grpc, http],
        urls={f"{name} grpc": grpc.address, f"{name} metrics": f"{http.url}/metrics"},
    )


def worker(name: str, conf: ModuleConf, checks: Sequence[Check], workers: Sequence[Server] = ()) -> Module:
    """A consumer or scheduler process: its work, plus health and metrics on HTTP."""
    http = ops_server(name, conf.http, checks)
    return Module(name, servers=[*workers, http], urls={f"{name} metrics": f"{http.url}/metrics"})
