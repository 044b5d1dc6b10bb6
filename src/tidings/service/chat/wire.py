"""Composition root of the chat service: builds data -> biz -> service -> server."""

from __future__ import annotations

from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.pkg.infra import Infra


async def wire(infra: Infra) -> Module:
    await infra.idgen()
    return module.grpc_service("chat", infra.settings.modules.chat, [infra.database_check()])
