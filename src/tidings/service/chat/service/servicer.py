"""``ChatServicer``: the generated ``tidings.chat.v1.ChatService`` on the chat use cases. Conversion only.

Requests arrive validated against their contract (the validation middleware); errors raised by the use cases
travel as they are (the recovery middleware puts them on the wire).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

from tidings.api.chat.v1 import chat_pb2, chat_pb2_grpc
from tidings.pkg import errors, log, trace
from tidings.pkg.errors.grpc import error_to_pb, to_grpc_code
from tidings.pkg.middleware import validation
from tidings.pkg.pbtime import timestamp
from tidings.search.model import MessageHit
from tidings.service.chat.biz.conversations import Conversations
from tidings.service.chat.biz.messages import Messages
from tidings.service.chat.biz.model import Cursor
from tidings.service.chat.biz.search import Search
from tidings.service.chat.pb import conversation_to_pb, inspection_to_pb, operator_conversation_to_pb, state_to_pb
from tidings.service.chat.store.records import message_to_pb

# The span of each send of a SendMessages call (a child of the client request it belongs to).
_SEND_SPAN = "tidings.chat.v1.ChatService/SendMessages send"
_SEND_METHOD = f"/{_SEND_SPAN}"
_SEND_ATTRIBUTES: dict[str, Any] = {
    "rpc.system": "grpc",
    "rpc.service": "tidings.chat.v1.ChatService",
    "rpc.method": "SendMessages",
}


def encode_cursor(cursor: Cursor | None) -> str:
    if cursor is None:
        return ""
    return base64.urlsafe_b64encode(f"{cursor.updated_at_ms}:{cursor.conversation_id}".encode()).decode()


def decode_cursor(token: str) -> Cursor | None:
    if not token:
        return None
    try:
        updated_at_ms, conversation_id = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        return Cursor(int(updated_at_ms), int(conversation_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        errors.raise_for_fields({"page_token": "not a page token this service gave out"})
        raise AssertionError("unreachable") from None


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, conversations: Conversations, messages: Messages, search: Search) -> None:
        self._conversations = conversations
        self._messages = messages
        self._search = search
        self._access = log.get("access")

    async def CreateDirect(self, request: chat_pb2.CreateDirectRequest, context: Any) -> chat_pb2.CreateDirectResponse:
        view, created = await self._conversations.create_direct(request.user_id, request.peer_id)
        return chat_pb2.CreateDirectResponse(conversation=conversation_to_pb(view), created=created)

    async def CreateGroup(self, request: chat_pb2.CreateGroupRequest, context: Any) -> chat_pb2.CreateGroupResponse:
        view = await self._conversations.create_group(request.user_id, request.title, list(request.member_ids))
        return chat_pb2.CreateGroupResponse(conversation=conversation_to_pb(view))

    async def GetConversation(
        self, request: chat_pb2.GetConversationRequest, context: Any
    ) -> chat_pb2.GetConversationResponse:
        view = await self._conversations.get(request.user_id, request.conversation_id)
        return chat_pb2.GetConversationResponse(conversation=conversation_to_pb(view))

    async def ListConversations(
        self, request: chat_pb2.ListConversationsRequest, context: Any
    ) -> chat_pb2.ListConversationsResponse:
        page = await self._conversations.list_page(request.user_id, request.limit, decode_cursor(request.page_token))
        return chat_pb2.ListConversationsResponse(
            conversations=[conversation_to_pb(view) for view in page.views],
            next_page_token=encode_cursor(page.next_cursor),
        )

    async def AddMembers(self, request: chat_pb2.AddMembersRequest, context: Any) -> chat_pb2.AddMembersResponse:
        view = await self._conversations.add_members(request.user_id, request.conversation_id, list(request.member_ids))
        return chat_pb2.AddMembersResponse(conversation=conversation_to_pb(view))

    async def RemoveMember(self, request: chat_pb2.RemoveMemberRequest, context: Any) -> chat_pb2.RemoveMemberResponse:
        view = await self._conversations.remove_member(request.user_id, request.conversation_id, request.member_id)
        return chat_pb2.RemoveMemberResponse(conversation=conversation_to_pb(view))

    async def SendMessage(self, request: chat_pb2.SendMessageRequest, context: Any) -> chat_pb2.SendMessageResponse:
        sent = await self._messages.send(
            request.conversation_id, request.sender_id, request.client_msg_id, request.text
        )
        return chat_pb2.SendMessageResponse(message=message_to_pb(sent.message), duplicate=sent.duplicate)

    async def SendMessages(self, request: chat_pb2.SendMessagesRequest, context: Any) -> chat_pb2.SendMessagesResponse:
        # Side by side: the sender takes all of them into its next batch.
        outcomes = await asyncio.gather(*(self._send_one(batched) for batched in request.sends))
        return chat_pb2.SendMessagesResponse(outcomes=outcomes)

    async def _send_one(self, batched: chat_pb2.BatchedSend) -> chat_pb2.SendOutcome:
        """One send of a batch, checked and answered as ``SendMessage`` would, in the trace of its own request
        (its span and its access line carry that request's trace id, as a call of its own would)."""
        request = batched.send
        started = time.perf_counter()
        code, reason = "OK", ""
        with trace.server_span(_SEND_SPAN, batched.trace_context, **_SEND_ATTRIBUTES) as span:
            try:
                validation.check(request)
                sent = await self._messages.send(
                    request.conversation_id, request.sender_id, request.client_msg_id, request.text
                )
                outcome = chat_pb2.SendOutcome(
                    sent=chat_pb2.SendMessageResponse(message=message_to_pb(sent.message), duplicate=sent.duplicate)
                )
            except errors.TidingsError as error:
                code, reason = to_grpc_code(error.code).name, error.reason
                span.set_attribute("tidings.error.reason", reason)
                outcome = chat_pb2.SendOutcome(error=error_to_pb(error, chat_pb2.SendError))
            span.set_attribute("rpc.grpc.status_code", code)
            self._access.info(
                "grpc call",
                **{
                    "rpc.method": _SEND_METHOD,
                    "rpc.grpc.status_code": code,
                    "error.code": reason or None,
                    "event.duration": int((time.perf_counter() - started) * 1e9),
                },
            )
        return outcome

    async def ListMessages(self, request: chat_pb2.ListMessagesRequest, context: Any) -> chat_pb2.ListMessagesResponse:
        position = request.WhichOneof("position")
        page = await self._messages.history(
            request.user_id,
            request.conversation_id,
            after_seq=request.after_seq if position == "after_seq" else None,
            before_seq=request.before_seq if position == "before_seq" else None,
            limit=request.limit,
            by_operator=request.by_operator,
        )
        return chat_pb2.ListMessagesResponse(
            messages=[message_to_pb(message) for message in page.messages], has_more=page.has_more
        )

    async def SearchMessages(
        self, request: chat_pb2.SearchMessagesRequest, context: Any
    ) -> chat_pb2.SearchMessagesResponse:
        page = await self._search.messages(
            request.user_id,
            request.query,
            conversation_id=request.conversation_id if request.HasField("conversation_id") else None,
            cursor=request.cursor or None,
            limit=request.limit,
            by_operator=request.by_operator,
        )
        return chat_pb2.SearchMessagesResponse(
            hits=[_hit_to_pb(hit) for hit in page.items], next_cursor=page.next_cursor or ""
        )

    async def MarkRead(self, request: chat_pb2.MarkReadRequest, context: Any) -> chat_pb2.MarkReadResponse:
        read_seq = await self._messages.mark_read(request.user_id, request.conversation_id, request.seq)
        return chat_pb2.MarkReadResponse(read_seq=read_seq)

    async def RecallMessage(
        self, request: chat_pb2.RecallMessageRequest, context: Any
    ) -> chat_pb2.RecallMessageResponse:
        message = await self._messages.recall(
            request.conversation_id,
            request.message_id,
            request.user_id,
            by_operator=request.by_operator,
            moderation_reason=request.moderation_reason,
        )
        return chat_pb2.RecallMessageResponse(message=message_to_pb(message))

    async def GetConversationStates(
        self, request: chat_pb2.GetConversationStatesRequest, context: Any
    ) -> chat_pb2.GetConversationStatesResponse:
        states = await self._conversations.states(request.user_id, list(request.conversation_ids))
        return chat_pb2.GetConversationStatesResponse(states=[state_to_pb(state) for state in states])

    async def InspectConversation(
        self, request: chat_pb2.InspectConversationRequest, context: Any
    ) -> chat_pb2.InspectConversationResponse:
        return inspection_to_pb(await self._conversations.inspect(request.conversation_id))

    async def DeleteConversation(
        self, request: chat_pb2.DeleteConversationRequest, context: Any
    ) -> chat_pb2.DeleteConversationResponse:
        view = await self._conversations.delete(request.operator_id, request.conversation_id, request.reason)
        return chat_pb2.DeleteConversationResponse(conversation=operator_conversation_to_pb(view))


def _hit_to_pb(hit: MessageHit) -> chat_pb2.MessageHit:
    doc = hit.doc
    message = chat_pb2.Message(
        id=doc.id,
        conversation_id=doc.conversation_id,
        seq=doc.seq,
        sender_id=doc.sender_id,
        text=doc.text,
        created_at=timestamp(doc.created_at_ms),
    )
    spans = [chat_pb2.TextSpan(start=start, end=end) for start, end in hit.highlights]
    return chat_pb2.MessageHit(message=message, highlights=spans, sender_name=doc.sender_name)
