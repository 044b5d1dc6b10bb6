"""The topics chat publishes, declared once for chat (the producer) and the jobs that consume them.

Each is keyed by conversation id: a conversation's events stay in one partition, in order. 12 partitions let up to
12 consumer instances share a group; the count never changes once created (keys would move).
"""

from __future__ import annotations

from typing import Any

from tidings.api.chat.v1 import events_pb2
from tidings.pkg.bus.events import EventTopic

MESSAGE_SENT = EventTopic("chat.message.sent", 12, events_pb2.MessageSent)
MESSAGE_RECALLED = EventTopic("chat.message.recalled", 12, events_pb2.MessageRecalled)
CONVERSATION_READ = EventTopic("chat.conversation.read", 12, events_pb2.ConversationRead)

ALL: tuple[EventTopic[Any], ...] = (MESSAGE_SENT, MESSAGE_RECALLED, CONVERSATION_READ)
