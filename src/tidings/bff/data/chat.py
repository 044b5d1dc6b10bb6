"""``ChatRepo`` over the chat service's gRPC API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import grpc

from tidings.api.chat.v1 import chat_pb2 as pb
from tidings.api.chat.v1 import chat_pb2_grpc as pb_grpc
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Conversation, Findings, Found, Page
from tidings.bff.codec import conversation_from_pb
from tidings.pkg import errors, trace
from tidings.pkg.batching import CallBatcher
from tidings.pkg.errors.grpc import error_from_pb, to_grpc_code
from tidings.pkg.middleware import deadline
from tidings.pkg.transport.grpc import SHARD_KEY
from tidings.service.chat.message import Message
from tidings.service.chat.store.records import message_from_pb

# The client span of each send in a SendMessages call (chat's span of that send is its child).
_SEND_SPAN = "tidings.chat.v1.ChatService/SendMessages send"
_SEND_ATTRIBUTES: dict[str, Any] = {
    "rpc.system": "grpc",
    "rpc.service": "tidings.chat.v1.ChatService",
    "rpc.method": "SendMessages",
}


class GrpcChatRepo:
    # The API returns a user's conversations in one list; the service pages them.
    LIST_PAGE = 500

    def __init__(self, channel: grpc.aio.Channel, *, send_shards: int = 1) -> None:
        self._stub = pb_grpc.ChatServiceStub(channel)
        self._sends = SendBatcher(self._stub, shards=send_shards)

    async def create_direct(self, user_id: int, peer_id: int) -> tuple[Conversation, bool]:
        response = await self._stub.CreateDirect(pb.CreateDirectRequest(user_id=user_id, peer_id=peer_id))
        return conversation_from_pb(response.conversation), response.created

    async def create_group(self, user_id: int, title: str, member_ids: list[int]) -> Conversation:
        request = pb.CreateGroupRequest(user_id=user_id, title=title, member_ids=member_ids)
        return conversation_from_pb((await self._stub.CreateGroup(request)).conversation)

    async def get(self, user_id: int, conversation_id: int) -> Conversation:
        request = pb.GetConversationRequest(user_id=user_id, conversation_id=conversation_id)
        return conversation_from_pb((await self._stub.GetConversation(request)).conversation)

    async def for_user(self, user_id: int) -> list[Conversation]:
        found: list[Conversation] = []
        token = ""
        while True:
            request = pb.ListConversationsRequest(user_id=user_id, limit=self.LIST_PAGE, page_token=token)
            response = await self._stub.ListConversations(request)
            found.extend(conversation_from_pb(c) for c in response.conversations)
            token = response.next_page_token
            if not token:
                return found

    async def add_members(self, user_id: int, conversation_id: int, member_ids: list[int]) -> Conversation:
        request = pb.AddMembersRequest(user_id=user_id, conversation_id=conversation_id, member_ids=member_ids)
        return conversation_from_pb((await self._stub.AddMembers(request)).conversation)

    async def remove_member(self, user_id: int, conversation_id: int, member_id: int) -> Conversation:
        request = pb.RemoveMemberRequest(user_id=user_id, conversation_id=conversation_id, member_id=member_id)
        return conversation_from_pb((await self._stub.RemoveMember(request)).conversation)

    async def send(self, user_id: int, conversation_id: int, client_msg_id: str, text: str) -> tuple[Message, bool]:
        request = pb.SendMessageRequest(
            conversation_id=conversation_id, sender_id=user_id, client_msg_id=client_msg_id, text=text
        )
        response = await self._sends.send(request)
        return message_from_pb(response.message), response.duplicate

    async def history(
        self, user_id: int, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> Page:
        request = pb.ListMessagesRequest(user_id=user_id, conversation_id=conversation_id, limit=limit)
        if after_seq is not None:
            request.after_seq = after_seq
        if before_seq is not None:
            request.before_seq = before_seq
        response = await self._stub.ListMessages(request)
        return Page([message_from_pb(m) for m in response.messages], response.has_more)

    async def mark_read(self, user_id: int, conversation_id: int, seq: int) -> int:
        request = pb.MarkReadRequest(user_id=user_id, conversation_id=conversation_id, seq=seq)
        read_seq: int = (await self._stub.MarkRead(request)).read_seq
        return read_seq

    async def search(
        self, user_id: int, query: str, *, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Findings:
        request = pb.SearchMessagesRequest(user_id=user_id, query=query, cursor=cursor or "", limit=limit)
        if conversation_id is not None:
            request.conversation_id = conversation_id
        response = await self._stub.SearchMessages(request)
        found = [
            Found(
                message_from_pb(hit.message),
                tuple((span.start, span.end) for span in hit.highlights),
                hit.sender_name,
            )
            for hit in response.hits
        ]
        return Findings(found, response.next_cursor or None)

    async def recall(self, user_id: int, conversation_id: int, message_id: int) -> Message:
        request = pb.RecallMessageRequest(user_id=user_id, conversation_id=conversation_id, message_id=message_id)
        return message_from_pb((await self._stub.RecallMessage(request)).message)


class SendBatcher:
    """Sends gathered into ``SendMessages`` calls (``CallBatcher``): a busy bff sends few large calls, so a message
    costs chat a share of one call instead of a whole one.

    One batcher per shard of conversations (the conversation id modulo ``shards``), whose calls carry the shard as
    their key on a keyed channel: all sends of a conversation reach the same chat instance while the instances stay
    the same. Chat publishes what one process is sent in seq order; two processes allocating from one conversation
    could publish out of it, and live deliveries and history would then show a seq before one below it.

    Each send keeps its own deadline (the request's time left) and trace (its client span travels in the batch).
    """

    def __init__(
        self, stub: pb_grpc.ChatServiceStub, *, shards: int = 1, max_batch: int = 500, max_calls: int = 4
    ) -> None:
        self._stub = stub
        self._batchers: list[CallBatcher[pb.BatchedSend, pb.SendOutcome]] = [
            CallBatcher(partial(self._call, str(shard)), callee="chat", max_batch=max_batch, max_calls=max_calls)
            for shard in range(shards)
        ]

    async def send(self, request: pb.SendMessageRequest) -> pb.SendMessageResponse:
        span, carrier = trace.start_client_span(_SEND_SPAN, **_SEND_ATTRIBUTES)
        left = deadline.remaining()
        try:
            if left is not None and left <= 0:
                raise common_errors.deadline_exceeded("no time left to send the message")
            due = None if left is None else time.monotonic() + left
            async with asyncio.timeout(left):
                batcher = self._batchers[request.conversation_id % len(self._batchers)]
                outcome = await batcher.submit(pb.BatchedSend(send=request, trace_context=carrier), due)
            if outcome.HasField("error"):
                raise error_from_pb(outcome.error)
            span.set_attribute("rpc.grpc.status_code", "OK")
            return outcome.sent
        except TimeoutError:
            # Given up on (the deadline passed): left out of the batch if its call has not started yet. The send
            # itself may still happen: a retry finds it.
            raise common_errors.deadline_exceeded(
                "the send was not answered in time; retry it with the same client_msg_id"
            ) from None
        except errors.TidingsError as error:
            span.set_attributes(
                {"rpc.grpc.status_code": to_grpc_code(error.code).name, "tidings.error.reason": error.reason}
            )
            raise
        except BaseException as exc:
            trace.fail(span, exc)
            raise
        finally:
            span.end()

    async def _call(
        self, shard: str, sends: list[pb.BatchedSend], time_left_s: float | None
    ) -> Sequence[pb.SendOutcome]:
        response: pb.SendMessagesResponse = await self._stub.SendMessages(
            pb.SendMessagesRequest(sends=sends), timeout=time_left_s, metadata=((SHARD_KEY, shard),)
        )
        return response.outcomes
