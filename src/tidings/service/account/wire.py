"""Composition root of the account service: builds data -> biz -> service -> server."""

from __future__ import annotations

from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.pkg.infra import Infra


async def wire(infra: Infra) -> Module:
    await infra.idgen()
    return module.grpc_service("account", infra.settings.modules.account, [infra.database_check()])
