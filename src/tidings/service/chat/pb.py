"""Protobuf forms of the chat domain types (``tidings.chat.v1``) for the servicer and the event publisher.

A message's wire form is ``store.records.message_to_pb``, the one the recent window and chat's jobs use too.
"""

from __future__ import annotations

from tidings.api.chat.v1 import chat_pb2
from tidings.pkg.pbtime import timestamp
from tidings.service.chat.biz.model import (
    Conversation,
    ConversationState,
    ConversationView,
    Inspection,
    Kind,
    Member,
    Role,
)
from tidings.service.chat.store.records import message_to_pb

_KINDS = {Kind.DIRECT: chat_pb2.CONVERSATION_KIND_DIRECT, Kind.GROUP: chat_pb2.CONVERSATION_KIND_GROUP}
_ROLES = {Role.OWNER: "owner", Role.MEMBER: "member"}


def conversation_to_pb(view: ConversationView) -> chat_pb2.Conversation:
    conversation: Conversation = view.conversation
    answer = chat_pb2.Conversation(
        id=conversation.id,
        kind=_KINDS[conversation.kind],
        title=conversation.title,
        member_ids=view.member_ids,
        max_seq=conversation.max_seq,
        read_seq=view.read_seq,
        unread_count=view.unread_count,
        updated_at=timestamp(conversation.updated_at_ms),
        owner_id=conversation.owner_id,
        created_at=timestamp(conversation.created_at_ms),
    )
    if view.last_message is not None:
        answer.last_message.CopyFrom(message_to_pb(view.last_message))
    return answer


def state_to_pb(state: ConversationState) -> chat_pb2.ConversationState:
    return chat_pb2.ConversationState(
        conversation_id=state.conversation_id,
        max_seq=state.max_seq,
        read_seq=state.read_seq,
        unread_count=state.unread_count,
        updated_at=timestamp(state.updated_at_ms),
    )


def operator_conversation_to_pb(view: ConversationView) -> chat_pb2.Conversation:
    """A conversation as operators are answered it: its read fields empty (no one member's view)."""
    answer = conversation_to_pb(view)
    answer.ClearField("read_seq")
    answer.ClearField("unread_count")
    return answer


def member_to_pb(member: Member) -> chat_pb2.Member:
    return chat_pb2.Member(
        user_id=member.user_id,
        role=_ROLES[member.role],
        read_seq=member.read_seq,
        joined_at=timestamp(member.joined_at_ms),
    )


def inspection_to_pb(inspection: Inspection) -> chat_pb2.InspectConversationResponse:
    return chat_pb2.InspectConversationResponse(
        conversation=operator_conversation_to_pb(inspection.view),
        members=[member_to_pb(member) for member in inspection.members],
        message_count=inspection.counts.total,
        recalled_count=inspection.counts.recalled,
    )
