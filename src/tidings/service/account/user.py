"""A user, and what signing in hands them, as account defines them: published for account's use cases and the bff."""

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


@dataclass(frozen=True)
class Session:
    """What a successful sign-in hands the client."""

    user: User
    access_token: str
    refresh_token: str
    expires_in_s: int
