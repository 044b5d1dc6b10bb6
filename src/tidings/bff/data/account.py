"""``AccountRepo`` over the account service's gRPC API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc

from tidings.api.account.v1 import account_pb2 as pb
from tidings.api.account.v1 import account_pb2_grpc as pb_grpc
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.auth import TokenVerifier
from tidings.bff.biz.model import Identity
from tidings.pkg.batching import CallBatcher
from tidings.pkg.clock import wall_ms
from tidings.pkg.errors.grpc import error_from_pb
from tidings.pkg.middleware import deadline
from tidings.pkg.pbtime import millis
from tidings.service.account.store.records import user_from_pb
from tidings.service.account.tokens import TokenDecoder
from tidings.service.account.user import Session, User


def _session_from_pb(grant: pb.AuthGrant) -> Session:
    return Session(user_from_pb(grant.user), grant.access_token, grant.refresh_token, grant.expires_in)


class GrpcAccountRepo:
    """With ``tokens`` (the signing secret's decoder) tokens are checked here and account is asked only about
    revocation, at most every few seconds per user (``TokenVerifier``); without it, account checks every one.
    Either way the questions waiting at one moment go in one ``VerifyTokens`` call."""

    def __init__(self, channel: grpc.aio.Channel, *, tokens: TokenDecoder | None = None) -> None:
        self._stub = pb_grpc.AccountServiceStub(channel)
        self._verifications: CallBatcher[str, pb.TokenVerdict] = CallBatcher(self._verify_tokens, callee="account")
        self._verifier = TokenVerifier(tokens, self._ask_account, wall_ms) if tokens is not None else None

    async def register(self, username: str, password: str, display_name: str | None) -> Session:
        request = pb.RegisterRequest(username=username, password=password, display_name=display_name or "")
        return _session_from_pb((await self._stub.Register(request)).grant)

    async def login(self, username: str, password: str) -> Session:
        return _session_from_pb((await self._stub.Login(pb.LoginRequest(username=username, password=password))).grant)

    async def refresh(self, refresh_token: str) -> Session:
        return _session_from_pb((await self._stub.Refresh(pb.RefreshRequest(refresh_token=refresh_token))).grant)

    async def verify(self, access_token: str) -> int:
        return (await self.identify(access_token)).user_id

    async def identify(self, access_token: str) -> Identity:
        if self._verifier is not None:
            return await self._verifier.identify(access_token)
        return await self._ask_account(access_token)

    async def _ask_account(self, access_token: str) -> Identity:
        left = deadline.remaining()
        if left is not None and left <= 0:
            raise common_errors.deadline_exceeded("no time left to verify the token")
        try:
            async with asyncio.timeout(left):
                verdict = await self._verifications.submit(
                    access_token, None if left is None else time.monotonic() + left
                )
        except TimeoutError:
            raise common_errors.deadline_exceeded("the token could not be verified in time") from None
        if verdict.HasField("error"):
            raise error_from_pb(verdict.error)
        return Identity(verdict.valid.user_id, millis(verdict.valid.expires_at))

    async def _verify_tokens(self, access_tokens: list[str], time_left_s: float | None) -> Sequence[pb.TokenVerdict]:
        response: pb.VerifyTokensResponse = await self._stub.VerifyTokens(
            pb.VerifyTokensRequest(access_tokens=access_tokens), timeout=time_left_s
        )
        return response.verdicts

    async def get(self, user_id: int) -> User:
        return user_from_pb((await self._stub.GetUser(pb.GetUserRequest(user_id=user_id))).user)

    async def get_many(self, user_ids: list[int]) -> list[User]:
        response = await self._stub.BatchGetUsers(pb.BatchGetUsersRequest(user_ids=user_ids))
        return [user_from_pb(message) for message in response.users]

    async def update_profile(
        self, user_id: int, display_name: str | None, bio: str | None, avatar_url: str | None
    ) -> User:
        request = pb.UpdateProfileRequest(user_id=user_id, display_name=display_name, bio=bio, avatar_url=avatar_url)
        return user_from_pb((await self._stub.UpdateProfile(request)).user)

    async def search(self, query: str, limit: int) -> list[User]:
        response = await self._stub.SearchUsers(pb.SearchUsersRequest(query=query, limit=limit))
        return [user_from_pb(message) for message in response.users]

    async def block(self, user_id: int, blocked_id: int) -> None:
        await self._stub.BlockUser(pb.BlockUserRequest(user_id=user_id, blocked_user_id=blocked_id))

    async def unblock(self, user_id: int, blocked_id: int) -> None:
        await self._stub.UnblockUser(pb.UnblockUserRequest(user_id=user_id, blocked_user_id=blocked_id))
