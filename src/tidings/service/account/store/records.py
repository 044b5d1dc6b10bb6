"""A user's wire form (``tidings.account.v1.User``) to and from account's published ``User``, for those who read
account's answers and events (the bff, the back office)."""

from __future__ import annotations

from tidings.api.account.v1 import account_pb2 as pb
from tidings.pkg.pbtime import millis
from tidings.service.account.user import User


def user_from_pb(message: pb.User) -> User:
    return User(
        id=message.id,
        username=message.username,
        display_name=message.display_name,
        bio=message.bio,
        avatar_url=message.avatar_url,
        created_at_ms=millis(message.created_at),
    )
