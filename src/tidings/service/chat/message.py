"""A message as chat defines it, published for those who carry it: chat's use cases, its jobs and the bff. Its wire
form and the mappings to and from it are ``store.records``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    client_msg_id: str
    # Empty once recalled.
    text: str
    created_at_ms: int
    recalled: bool = False
