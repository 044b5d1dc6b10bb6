"""A user's wire form (``tidings.account.v1.User``) to and from account's published ``User``: account writes it in
its answers and events, the bff and the back office read it."""

from __future__ import annotations

from tidings.api.account.v1 import account_pb2 as pb
from tidings.pkg.pbtime import millis, timestamp
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


def user_to_pb(user: User) -> pb.User:
    return pb.User(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        bio=user.bio,
        avatar_url=user.avatar_url,
        created_at=timestamp(user.created_at_ms),
    )
