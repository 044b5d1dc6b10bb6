"""Composition root of the back office: builds data -> biz -> service -> its HTTP server (API and console)."""

from __future__ import annotations

from tidings.admin.biz.actions import Moderation
from tidings.admin.biz.audit import Audited
from tidings.admin.biz.lookups import Lookups
from tidings.admin.biz.operators import OperatorOptions, Operators
from tidings.admin.biz.overview import Overview
from tidings.admin.data.account import GrpcAccounts
from tidings.admin.data.audit import SQLAuditLog
from tidings.admin.data.chat import GrpcChats
from tidings.admin.data.devices import RouteDevices
from tidings.admin.data.operators import SQLLoginFailures, SQLOperatorRepo, SQLSessionRepo
from tidings.admin.data.pipeline import BusPipeline
from tidings.admin.data.totp import PyOTPSecondFactor
from tidings.admin.service.http import router
from tidings.bootstrap import Infra
from tidings.conf import AdminConf
from tidings.job.groups import CONSUMER_GROUPS
from tidings.pkg import log, trace
from tidings.pkg.app import Module
from tidings.pkg.bus import events
from tidings.pkg.clock import SystemClock
from tidings.pkg.passwords import Argon2Hasher
from tidings.pkg.transport import web
from tidings.pkg.transport.http import HttpServer, api_app, ops_server
from tidings.task.store.stats import SQLStatsReader


async def operators(infra: Infra) -> Operators:
    """Operators and their sessions (``tidings admin create-operator`` uses it too)."""
    conf: AdminConf = infra.settings.modules.admin
    engine = await infra.engine()
    idgen = await infra.idgen()
    return Operators(
        SQLOperatorRepo(engine),
        SQLSessionRepo(engine),
        SQLLoginFailures(engine),
        Argon2Hasher(
            time_cost=infra.settings.auth.password_time_cost, memory_kib=infra.settings.auth.password_memory_kib
        ),
        PyOTPSecondFactor(),
        idgen.next_id,
        SystemClock(),
        OperatorOptions(
            session_ttl_s=conf.session_ttl_s, max_failures=conf.login_max_failures, lock_s=conf.login_lock_s
        ),
    )


async def wire(infra: Infra) -> Module:
    conf = infra.settings.modules.admin
    engine = await infra.engine()
    clock = SystemClock()
    accounts, chats = GrpcAccounts(infra.channel("account")), GrpcChats(infra.channel("chat"))
    staff = await operators(infra)
    audited = Audited(
        SQLAuditLog(engine), (await infra.idgen()).next_id, clock, trace.current_trace_id, log.get("admin.audit")
    )
    topics = events.Topics(infra.settings.bus.namespace)
    groups = {group: [topics.name(topic) for topic in read] for group, read in CONSUMER_GROUPS.items()}
    checks = [infra.database_check()]
    app = api_app(
        "Tidings back office API",
        "Operators' look-ups, moderation actions, audit log and stats. Every id is a decimal string; errors share "
        "the public API's body.",
        checks,
        request_timeout_s=conf.request_timeout_s,
        docs=conf.docs,
        cors_origins=conf.cors_origins,
        routers=[
            router(
                staff,
                Lookups(accounts, chats, RouteDevices(infra.route_table())),
                Moderation(accounts, chats, staff, audited),
                audited,
                Overview(SQLStatsReader(engine), BusPipeline(await infra.bus(), groups), clock),
                secure_cookies=conf.secure_cookies,
            )
        ],
    )
    web.install(app, "tidings.admin", at="/admin")
    http = HttpServer("admin", app, conf.http, trusted_proxies=conf.trusted_proxies)
    ops = ops_server("admin metrics", conf.metrics, checks)
    return Module(
        "admin",
        servers=[http, ops],
        urls={
            "admin console": f"{http.url}/admin/",
            "admin api (OpenAPI)": f"{http.url}/openapi.json",
            "admin metrics": f"{ops.url}/metrics",
        },
    )
