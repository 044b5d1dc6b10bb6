"""The back office's HTTP API (``/admin/v1``): JSON in, a use case, JSON out. No logic lives here.

An operator proves who they are with the session cookie the console gets at login (HttpOnly, SameSite=Strict), or
with the same session's token as a bearer token (scripts). A state-changing call by cookie must also carry the
session's CSRF token in ``X-CSRF-Token``. Roles are checked by the use cases.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at import time, and the
``Signed`` dependency is a local of ``router``, which postponed (string) annotations could not resolve.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Header, Path, Query, Request, Response, status

from tidings.admin.biz.actions import Moderation
from tidings.admin.biz.audit import Audited
from tidings.admin.biz.lookups import Lookups
from tidings.admin.biz.model import AuditQuery, Caller
from tidings.admin.biz.operators import Operators, check_csrf
from tidings.admin.biz.overview import Overview
from tidings.admin.service.schema import (
    AuditOut,
    AuditPageOut,
    ConversationDetailOut,
    CreatedOperatorOut,
    CreateOperatorBody,
    DaysOut,
    HitsOut,
    LoginBody,
    MessageOut,
    OperatorOut,
    OperatorsOut,
    PageOut,
    PasswordOut,
    PipelineOut,
    ReasonBody,
    SessionOut,
    UserDetailOut,
    UserRecordOut,
    UsersOut,
)
from tidings.pkg import charts
from tidings.pkg.edge import MAX_ID, rfc3339
from tidings.pkg.errors.http import ERROR_RESPONSES

COOKIE = "tidings_admin"
PathId = Annotated[int, Path(gt=0, le=MAX_ID)]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SVG = "image/svg+xml"


def router(  # noqa: PLR0915 (one route after another, each a few lines, reads best as one list)
    operators: Operators,
    lookups: Lookups,
    moderation: Moderation,
    audit: Audited,
    overview: Overview,
    *,
    secure_cookies: bool,
) -> APIRouter:
    api = APIRouter(prefix="/admin/v1", responses=ERROR_RESPONSES)

    async def signed_in(
        request: Request,
        session: Annotated[str | None, Cookie(alias=COOKIE, max_length=4096)] = None,
        authorization: Annotated[str | None, Header(max_length=4096)] = None,
        csrf: Annotated[str, Header(alias="X-CSRF-Token", max_length=128)] = "",
    ) -> Caller:
        scheme, _, bearer = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and bearer.strip():
            return await operators.caller(bearer.strip(), by_cookie=False)
        caller = await operators.caller(session or "", by_cookie=True)
        if request.method not in _SAFE_METHODS:
            check_csrf(caller, csrf)
        return caller

    Signed = Annotated[Caller, Depends(signed_in)]  # noqa: N806 (a type alias, named like one)

    # Sessions ---------------------------------------------------------------------------------------------------

    @api.post("/auth/login", tags=["auth"])
    async def login(body: LoginBody, response: Response) -> SessionOut:
        signed = await operators.login(body.username, body.password, body.code)
        if not body.bearer:
            response.set_cookie(
                COOKIE,
                signed.token,
                expires=datetime.fromtimestamp(signed.expires_at_ms / 1000, tz=UTC),
                path="/admin",
                secure=secure_cookies,
                httponly=True,
                samesite="strict",
            )
        return SessionOut(
            operator=OperatorOut.of(signed.operator),
            csrf_token=signed.csrf_token,
            expires_at=rfc3339(signed.expires_at_ms),
            token=signed.token if body.bearer else None,
        )

    @api.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
    async def logout(
        caller: Signed,
        response: Response,
        session: Annotated[str | None, Cookie(alias=COOKIE, max_length=4096)] = None,
        authorization: Annotated[str | None, Header(max_length=4096)] = None,
    ) -> None:
        _, _, bearer = (authorization or "").partition(" ")
        await operators.logout(bearer.strip() or session or "")
        response.delete_cookie(COOKIE, path="/admin", secure=secure_cookies, httponly=True, samesite="strict")

    @api.get("/auth/session", tags=["auth"])
    async def session(caller: Signed) -> SessionOut:
        """Who is signed in, and the CSRF token the console sends with every change (after a reload too)."""
        return SessionOut(
            operator=OperatorOut.of(caller.operator),
            csrf_token=caller.csrf_token,
            expires_at=rfc3339(caller.expires_at_ms),
        )

    # Look-ups ---------------------------------------------------------------------------------------------------

    @api.get("/users", tags=["users"])
    async def find_users(caller: Signed, query: Annotated[str, Query(min_length=1, max_length=64)]) -> UsersOut:
        return UsersOut(users=[UserRecordOut.of(r) for r in await lookups.users(caller, query)])

    @api.get("/users/{user_id}", tags=["users"])
    async def user(caller: Signed, user_id: PathId) -> UserDetailOut:
        return UserDetailOut.of(await lookups.user(caller, user_id))

    @api.get("/conversations/{conversation_id}", tags=["conversations"])
    async def conversation(caller: Signed, conversation_id: PathId) -> ConversationDetailOut:
        return ConversationDetailOut.of(await lookups.conversation(caller, conversation_id))

    @api.get("/conversations/{conversation_id}/messages", tags=["conversations"])
    async def history(
        caller: Signed,
        conversation_id: PathId,
        after_seq: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        before_seq: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        # Below the largest id: the page after it starts one past it.
        around_seq: Annotated[int | None, Query(gt=0, lt=MAX_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> PageOut:
        """A page of history, or with ``around_seq`` the message there with a few on each side."""
        if around_seq is not None:
            page = await lookups.around(caller, conversation_id, around_seq)
        else:
            page = await lookups.history(
                caller, conversation_id, after_seq=after_seq, before_seq=before_seq, limit=limit
            )
        return PageOut(messages=[MessageOut.of(m) for m in page.messages], has_more=page.has_more)

    @api.get("/messages/search", tags=["messages"])
    async def search(
        caller: Signed,
        query: Annotated[str, Query(min_length=1, max_length=256)],
        conversation_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
    ) -> HitsOut:
        """Every conversation (or one); 503 SEARCH_UNAVAILABLE while the search index is down."""
        return HitsOut.of(await lookups.search(caller, query, conversation_id, cursor, limit))

    # Actions (each audited) -------------------------------------------------------------------------------------

    @api.post("/users/{user_id}/ban", tags=["actions"])
    async def ban(caller: Signed, user_id: PathId, body: ReasonBody) -> UserRecordOut:
        """The user can no longer log in; their tokens are revoked and open connections closed at once."""
        return UserRecordOut.of(await moderation.ban(caller, user_id, body.reason))

    @api.post("/users/{user_id}/unban", tags=["actions"])
    async def unban(caller: Signed, user_id: PathId, body: ReasonBody) -> UserRecordOut:
        return UserRecordOut.of(await moderation.unban(caller, user_id, body.reason))

    @api.post("/users/{user_id}/reset-password", tags=["actions"])
    async def reset_password(caller: Signed, user_id: PathId, body: ReasonBody) -> PasswordOut:
        return PasswordOut(temporary_password=await moderation.reset_password(caller, user_id, body.reason))

    @api.post("/conversations/{conversation_id}/messages/{seq}/remove", tags=["actions"])
    async def remove_message(caller: Signed, conversation_id: PathId, seq: PathId, body: ReasonBody) -> MessageOut:
        """Recalled for everyone; the members see the reason."""
        return MessageOut.of(await moderation.remove_message(caller, conversation_id, seq, body.reason))

    @api.post("/conversations/{conversation_id}/delete", tags=["actions"])
    async def delete_group(caller: Signed, conversation_id: PathId, body: ReasonBody) -> ConversationDetailOut:
        """The group as it was."""
        return ConversationDetailOut.of(await moderation.delete_group(caller, conversation_id, body.reason))

    @api.get("/operators", tags=["operators"])
    async def all_operators(caller: Signed) -> OperatorsOut:
        return OperatorsOut(operators=[OperatorOut.of(o) for o in await operators.all(caller)])

    @api.post("/operators", status_code=status.HTTP_201_CREATED, tags=["operators"])
    async def create_operator(caller: Signed, body: CreateOperatorBody) -> CreatedOperatorOut:
        created, secret = await moderation.create_operator(
            caller, body.username, body.password, body.role, totp=body.totp, reason=body.reason
        )
        return CreatedOperatorOut(
            operator=OperatorOut.of(created),
            totp_uri=operators.provisioning_uri(created, secret) if secret else None,
        )

    # The audit log ----------------------------------------------------------------------------------------------

    @api.get("/audit", tags=["audit"])
    async def audit_log(
        caller: Signed,
        operator: Annotated[str, Query(max_length=64)] = "",
        action: Annotated[str, Query(max_length=32)] = "",
        target: Annotated[str, Query(max_length=64)] = "",
        text: Annotated[str, Query(max_length=100)] = "",
        before: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> AuditPageOut:
        """Newest first; filters combine. There is no call that changes or removes an entry."""
        query = AuditQuery(operator, action, target, text, before, limit)
        records = await audit.page(caller, query)
        next_before = str(records[-1].entry.id) if len(records) == limit else None
        return AuditPageOut(entries=[AuditOut.of(r) for r in records], next_before=next_before)

    # Stats ------------------------------------------------------------------------------------------------------

    Days = Annotated[int, Query(ge=1, le=366)]  # noqa: N806 (a type alias, named like one)

    @api.get("/stats/days", tags=["stats"])
    async def days(caller: Signed, days: Days = 30) -> DaysOut:
        """Messages and daily active users per UTC day, and the busiest conversations of the newest day."""
        return DaysOut.of(await overview.days(caller, days))

    @api.get("/stats/pipeline", tags=["stats"])
    async def pipeline(caller: Signed) -> PipelineOut:
        """Each consumer group's lag per topic, and the records waiting in each dead-letter topic."""
        return PipelineOut.of(await overview.pipeline(caller))

    @api.get("/stats/charts/{figure}.svg", tags=["stats"], response_class=Response)
    async def chart(
        caller: Signed, figure: Annotated[str, Path(pattern="^(messages|active-users)$")], days: Days = 30
    ) -> Response:
        found = await overview.days(caller, days)
        if figure == "messages":
            points = [(rfc3339(a.start_ms)[:10], a.messages) for a in found.activity]
            title = f"Messages per day, last {days} days"
        else:
            points = [(rfc3339(a.start_ms)[:10], a.active_senders) for a in found.activity]
            title = f"Daily active users, last {days} days"
        return Response(charts.bars(title, points), media_type=_SVG, headers={"Cache-Control": "no-store"})

    return api


__all__ = ["COOKIE", "AuditOut", "router"]
