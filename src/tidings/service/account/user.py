"""A user as account defines them, published for those who show users: account's use cases and the bff."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    bio: str
    avatar_url: str
    created_at_ms: int
