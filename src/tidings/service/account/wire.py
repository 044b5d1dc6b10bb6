"""Composition root of the account service: builds data -> biz -> service -> server."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from tidings.api.account.v1 import account_pb2, account_pb2_grpc
from tidings.bootstrap import Infra
from tidings.pkg import log, module
from tidings.pkg.app import Module
from tidings.pkg.bus import events
from tidings.pkg.cache import Cache, dataclass_codec
from tidings.pkg.cache.kit import CacheKit
from tidings.pkg.clock import SystemClock
from tidings.pkg.passwords import Argon2Hasher
from tidings.service.account import topics as account_topics
from tidings.service.account.biz.auth import Auth, AuthPolicy
from tidings.service.account.biz.operators import Operators
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.data.publisher import BusUserEvents
from tidings.service.account.data.repos import SQLBlockRepo, SQLRefreshTokenRepo, SQLUserRepo
from tidings.service.account.service.account import AccountService
from tidings.service.account.token_codec import JWTCodec
from tidings.service.account.user import User

# Bump when ``User`` changes shape: values of the old shape then read as misses (docs/CACHE.md).
PROFILE_SCHEMA = 1


def profile_cache(kit: CacheKit, prefix: str = "account") -> Cache[int, User]:
    return kit.cache("profile", dataclass_codec(User, PROFILE_SCHEMA), lambda user_id: f"{prefix}:profile:{user_id}")


async def wire(infra: Infra, *, registry: CollectorRegistry = REGISTRY) -> Module:
    settings = infra.settings
    if settings.auth.jwt_secret is None:
        raise ValueError("auth.jwt_secret must be set for the account service (TIDINGS_AUTH__JWT_SECRET)")
    engine = await infra.engine()
    statements = await infra.statements_engine()
    clock = SystemClock()
    # Others' profiles (the cache's loader) and user search read the replica, if any; login, registration and
    # one's own account read the primary (docs/DATA.md).
    users = SQLUserRepo(engine, statements=statements, replica=await infra.replica())
    topics = events.Topics(settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs(account_topics.ALL))
    user_events = BusUserEvents(bus, topics)
    hasher = Argon2Hasher(time_cost=settings.auth.password_time_cost, memory_kib=settings.auth.password_memory_kib)
    auth = Auth(
        users,
        SQLRefreshTokenRepo(engine, statements=statements),
        hasher,
        JWTCodec(settings.auth.jwt_secret.get_secret_value()),
        await infra.idgen(),
        clock,
        AuthPolicy(access_ttl_s=settings.auth.access_ttl_s, refresh_ttl_s=settings.auth.refresh_ttl_s),
        user_events,
    )
    profiles = Profiles(
        users,
        SQLBlockRepo(engine, statements=statements),
        clock,
        profile_cache(await infra.cache_kit(registry, "account")),
        events=user_events,
        search=await infra.search(),
    )
    operators = Operators(users, auth, hasher, clock, log.get("account.operators"))
    servicer = AccountService(auth, profiles, operators)
    service_name = account_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name
    return module.grpc_service(
        "account",
        settings.modules.account,
        [infra.database_check()],
        registrars=[lambda server: account_pb2_grpc.add_AccountServiceServicer_to_server(servicer, server)],
        service_names=[service_name],
    )
