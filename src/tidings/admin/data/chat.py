"""``Chats`` over the chat service's gRPC API: its operator calls, and the ordinary ones with ``by_operator``."""

from __future__ import annotations

import grpc

from tidings.admin.biz.model import ConversationDetail, ConversationSummary, HistoryPage, Hit, Hits, Member
from tidings.api.chat.v1 import chat_pb2 as pb
from tidings.api.chat.v1 import chat_pb2_grpc as pb_grpc
from tidings.pkg.pbtime import millis
from tidings.service.chat.message import Message
from tidings.service.chat.store.records import message_from_pb

_KINDS = {pb.CONVERSATION_KIND_DIRECT: "direct", pb.CONVERSATION_KIND_GROUP: "group"}
LIST_PAGE = 200


def summary_from_pb(c: pb.Conversation) -> ConversationSummary:
    return ConversationSummary(
        id=c.id,
        kind=_KINDS.get(c.kind, "unknown"),
        title=c.title,
        owner_id=c.owner_id,
        member_ids=tuple(c.member_ids),
        max_seq=c.max_seq,
        created_at_ms=millis(c.created_at),
        updated_at_ms=millis(c.updated_at),
    )


class GrpcChats:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.ChatServiceStub(channel)

    async def conversations_of(self, user_id: int) -> list[ConversationSummary]:
        request = pb.ListConversationsRequest(user_id=user_id, limit=LIST_PAGE)
        response = await self._stub.ListConversations(request)
        return [summary_from_pb(c) for c in response.conversations]

    async def inspect(self, conversation_id: int) -> ConversationDetail:
        response = await self._stub.InspectConversation(pb.InspectConversationRequest(conversation_id=conversation_id))
        members = [Member(m.user_id, m.role, m.read_seq, millis(m.joined_at)) for m in response.members]
        return ConversationDetail(
            summary_from_pb(response.conversation), members, response.message_count, response.recalled_count
        )

    async def history(
        self, operator_id: int, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> HistoryPage:
        request = pb.ListMessagesRequest(
            user_id=operator_id, conversation_id=conversation_id, limit=limit, by_operator=True
        )
        if after_seq is not None:
            request.after_seq = after_seq
        if before_seq is not None:
            request.before_seq = before_seq
        response = await self._stub.ListMessages(request)
        return HistoryPage([message_from_pb(m) for m in response.messages], response.has_more)

    async def search(
        self, operator_id: int, query: str, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Hits:
        request = pb.SearchMessagesRequest(
            user_id=operator_id, query=query, cursor=cursor or "", limit=limit, by_operator=True
        )
        if conversation_id is not None:
            request.conversation_id = conversation_id
        response = await self._stub.SearchMessages(request)
        hits = [
            Hit(message_from_pb(h.message), tuple((s.start, s.end) for s in h.highlights), h.sender_name)
            for h in response.hits
        ]
        return Hits(hits, response.next_cursor or None)

    async def remove(self, operator_id: int, conversation_id: int, message_id: int, reason: str) -> Message:
        request = pb.RecallMessageRequest(
            user_id=operator_id,
            conversation_id=conversation_id,
            message_id=message_id,
            by_operator=True,
            moderation_reason=reason,
        )
        return message_from_pb((await self._stub.RecallMessage(request)).message)

    async def delete_group(self, operator_id: int, conversation_id: int, reason: str) -> ConversationSummary:
        request = pb.DeleteConversationRequest(conversation_id=conversation_id, operator_id=operator_id, reason=reason)
        return summary_from_pb((await self._stub.DeleteConversation(request)).conversation)
