"""Composition root of the back office."""

from __future__ import annotations

from tidings.bootstrap import Infra
from tidings.pkg import module
from tidings.pkg.app import Module


async def wire(infra: Infra) -> Module:
    return module.worker("admin", infra.settings.modules.admin, checks=[])
