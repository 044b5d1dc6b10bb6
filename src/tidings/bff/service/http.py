"""The public REST API of API.md: JSON in, a use case or a service call, JSON out. No logic lives here.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at import time, and the
``Caller`` dependency is a local of ``router``, which postponed (string) annotations could not resolve.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz import usecase
from tidings.bff.biz.ports import AccountRepo, ChatRepo
from tidings.bff.biz.quotas import Quotas
from tidings.bff.service.schema import (
    USER_QUERY_PATTERN,
    ConversationOut,
    ConversationsOut,
    CreateConversationBody,
    FoundOut,
    LoginBody,
    MembersBody,
    MessageOut,
    PageOut,
    ProfileBody,
    ReadBody,
    RefreshBody,
    RegisterBody,
    SearchOut,
    SendBody,
    SentOut,
    SessionOut,
    SyncOut,
    UserOut,
    UsersOut,
)
from tidings.pkg import errors
from tidings.pkg.edge import MAX_ID
from tidings.pkg.errors.http import ERROR_RESPONSES

PathId = Annotated[int, Path(gt=0, le=MAX_ID)]


def client_address(request: Request) -> str:
    """Who sent the request: the connection's peer, or the address a trusted proxy forwarded
    (``modules.bff.trusted_proxies``)."""
    return request.client.host if request.client is not None else "unknown"


def router(  # noqa: PLR0915 (one route after another, each a few lines, reads best as one list)
    accounts: AccountRepo,
    chats: ChatRepo,
    sync: usecase.Sync,
    limits: Quotas,
    members: usecase.Members | None = None,
) -> APIRouter:
    """Every route of the public API, bound to the repos and use cases the composition root built."""
    members = members or usecase.Members(chats)
    api = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

    async def caller(authorization: Annotated[str | None, Header(max_length=8192)] = None) -> int:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise common_errors.unauthenticated("send Authorization: Bearer <access_token>")
        return await accounts.verify(token.strip())

    Caller = Annotated[int, Depends(caller)]  # noqa: N806 (a type alias, named like one)

    @api.post("/auth/register", status_code=status.HTTP_201_CREATED, tags=["auth"])
    async def register(body: RegisterBody, request: Request) -> SessionOut:
        await limits.register(client_address(request))
        return SessionOut.of(await accounts.register(body.username, body.password, body.display_name))

    @api.post("/auth/login", tags=["auth"])
    async def login(body: LoginBody, request: Request) -> SessionOut:
        session = await limits.login(
            body.username, client_address(request), lambda: accounts.login(body.username, body.password)
        )
        return SessionOut.of(session)

    @api.post("/auth/refresh", tags=["auth"])
    async def refresh(body: RefreshBody, request: Request) -> SessionOut:
        return SessionOut.of(
            await limits.refresh(client_address(request), lambda: accounts.refresh(body.refresh_token))
        )

    @api.get("/me", tags=["users"])
    async def me(user_id: Caller) -> UserOut:
        return UserOut.of(await accounts.get(user_id))

    @api.patch("/me", tags=["users"])
    async def update_me(body: ProfileBody, user_id: Caller) -> UserOut:
        return UserOut.of(await accounts.update_profile(user_id, body.display_name, body.bio, body.avatar_url))

    @api.get("/users/{user_id}", tags=["users"])
    async def get_user(user_id: PathId, _: Caller) -> UserOut:
        return UserOut.of(await accounts.get(user_id))

    @api.get("/users", tags=["users"])
    async def search_users(
        _: Caller,
        query: Annotated[str, Query(min_length=2, max_length=64, pattern=USER_QUERY_PATTERN)],
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
    ) -> UsersOut:
        return UsersOut(users=[UserOut.of(user) for user in await accounts.search(query, limit)])

    @api.put("/users/{user_id}/block", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
    async def block(user_id: PathId, me: Caller) -> None:
        """Block a user: no direct chat between you, and neither of you can put the other into a group."""
        await accounts.block(me, user_id)

    @api.delete("/users/{user_id}/block", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
    async def unblock(user_id: PathId, me: Caller) -> None:
        await accounts.unblock(me, user_id)

    @api.post(
        "/conversations",
        status_code=status.HTTP_201_CREATED,
        tags=["conversations"],
        responses={200: {"model": ConversationOut, "description": "The direct conversation, which already existed."}},
    )
    async def create_conversation(body: CreateConversationBody, response: Response, user_id: Caller) -> ConversationOut:
        if body.kind == "direct":
            if body.peer_id is None:
                errors.raise_for_fields({"peer_id": "required for a direct conversation"})
            conversation, created = await chats.create_direct(user_id, body.peer_id or 0)
            if not created:
                response.status_code = status.HTTP_200_OK
            return ConversationOut.of(conversation)
        if body.title is None:
            errors.raise_for_fields({"title": "required for a group"})
        return ConversationOut.of(await chats.create_group(user_id, body.title or "", body.member_ids or []))

    @api.get("/conversations", tags=["conversations"])
    async def list_conversations(user_id: Caller) -> ConversationsOut:
        conversations = usecase.newest_first(await chats.for_user(user_id))
        return ConversationsOut(conversations=[ConversationOut.of(conv) for conv in conversations])

    @api.get("/conversations/{conversation_id}", tags=["conversations"])
    async def get_conversation(conversation_id: PathId, user_id: Caller) -> ConversationOut:
        return ConversationOut.of(await chats.get(user_id, conversation_id))

    @api.post("/conversations/{conversation_id}/members", tags=["conversations"])
    async def add_members(conversation_id: PathId, body: MembersBody, user_id: Caller) -> ConversationOut:
        return ConversationOut.of(await members.add(user_id, conversation_id, body.user_ids))

    @api.delete("/conversations/{conversation_id}/members/{user_id}", tags=["conversations"])
    async def remove_member(conversation_id: PathId, user_id: PathId, me: Caller) -> ConversationOut:
        return ConversationOut.of(await members.remove(me, conversation_id, user_id))

    @api.post(
        "/conversations/{conversation_id}/messages",
        status_code=status.HTTP_201_CREATED,
        tags=["messages"],
        responses={200: {"model": SentOut, "description": "A retry (the same client_msg_id): the message stored."}},
    )
    async def send(conversation_id: PathId, body: SendBody, response: Response, user_id: Caller) -> SentOut:
        await limits.send(user_id)
        message, duplicate = await chats.send(user_id, conversation_id, body.client_msg_id, body.text)
        if duplicate:
            response.status_code = status.HTTP_200_OK
        return SentOut(message=MessageOut.of(message))

    @api.get("/conversations/{conversation_id}/messages", tags=["messages"])
    async def history(
        conversation_id: PathId,
        user_id: Caller,
        after_seq: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        before_seq: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int | None, Query(ge=1, le=MAX_ID, description="1-200; larger values are capped")] = None,
    ) -> PageOut:
        page = await usecase.history(chats, user_id, conversation_id, after_seq, before_seq, limit)
        return PageOut(messages=[MessageOut.of(message) for message in page.messages], has_more=page.has_more)

    @api.post("/conversations/{conversation_id}/read", status_code=status.HTTP_204_NO_CONTENT, tags=["messages"])
    async def mark_read(conversation_id: PathId, body: ReadBody, user_id: Caller) -> None:
        await chats.mark_read(user_id, conversation_id, body.seq)

    @api.delete(
        "/conversations/{conversation_id}/messages/{message_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["messages"],
    )
    async def recall(conversation_id: PathId, message_id: PathId, user_id: Caller) -> None:
        await chats.recall(user_id, conversation_id, message_id)

    @api.get("/sync", tags=["sync"])
    async def snapshot(user_id: Caller) -> SyncOut:
        state = await sync.snapshot(user_id)
        return SyncOut(
            me=UserOut.of(state.me),
            conversations=[ConversationOut.of(conv) for conv in usecase.newest_first(state.conversations)],
            presence={str(user): status.value for user, status in state.presence.items()},
        )

    @api.get("/search/messages", tags=["search"])
    async def search_messages(
        user_id: Caller,
        query: Annotated[str, Query(max_length=1024, description="1-256 characters once trimmed; words, not syntax")],
        conversation_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int | None, Query(ge=1, le=50, description="1-50, default 20")] = None,
    ) -> SearchOut:
        """Messages holding every word of the query, newest first, from the conversations you are a member of."""
        findings = await usecase.search_messages(chats, user_id, query, conversation_id, cursor, limit)
        return SearchOut(messages=[FoundOut.found(found) for found in findings.found], next_cursor=findings.next_cursor)

    return api
