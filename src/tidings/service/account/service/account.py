"""The AccountService servicer: protobuf in, use case, protobuf out. No logic lives here."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from tidings.api.account.v1 import account_pb2 as pb
from tidings.api.account.v1 import account_pb2_grpc as pb_grpc
from tidings.api.errors.v1 import errors_pb2
from tidings.pkg.errors import TidingsError
from tidings.pkg.errors.grpc import error_to_pb
from tidings.pkg.pbtime import timestamp
from tidings.service.account.biz.auth import Auth
from tidings.service.account.biz.operators import Change, OperatorAction, Operators, UserRecord
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.biz.user import ProfileChange
from tidings.service.account.store.records import user_to_pb
from tidings.service.account.tokens import AccessClaims
from tidings.service.account.user import Session

Context: TypeAlias = grpc.aio.ServicerContext


def _grant(session: Session) -> pb.AuthGrant:
    return pb.AuthGrant(
        user=user_to_pb(session.user),
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_in=session.expires_in_s,
    )


def _record(record: UserRecord) -> pb.UserRecord:
    answer = pb.UserRecord(user=user_to_pb(record.user), banned=record.banned)
    if record.last_active_at_ms is not None:
        answer.last_active_at.CopyFrom(timestamp(record.last_active_at_ms))
    return answer


def _action(action: pb.OperatorAction) -> OperatorAction:
    return OperatorAction(action.operator_id, action.reason)


def _change(change: Change) -> dict[str, pb.UserRecord]:
    return {"before": _record(change.before), "after": _record(change.after)}


class AccountService(pb_grpc.AccountServiceServicer):
    def __init__(self, auth: Auth, profiles: Profiles, operators: Operators) -> None:
        self._auth = auth
        self._profiles = profiles
        self._operators = operators

    async def Register(self, request: pb.RegisterRequest, context: Context) -> pb.RegisterResponse:
        session = await self._auth.register(request.username, request.password, request.display_name or None)
        return pb.RegisterResponse(grant=_grant(session))

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        return pb.LoginResponse(grant=_grant(await self._auth.login(request.username, request.password)))

    async def Refresh(self, request: pb.RefreshRequest, context: Context) -> pb.RefreshResponse:
        return pb.RefreshResponse(grant=_grant(await self._auth.refresh(request.refresh_token)))

    async def VerifyToken(self, request: pb.VerifyTokenRequest, context: Context) -> pb.VerifyTokenResponse:
        return _verified(await self._auth.verify(request.access_token))

    async def VerifyTokens(self, request: pb.VerifyTokensRequest, context: Context) -> pb.VerifyTokensResponse:
        verdicts = await self._auth.verify_many(list(request.access_tokens))
        return pb.VerifyTokensResponse(
            verdicts=[
                pb.TokenVerdict(error=error_to_pb(verdict, errors_pb2.Error))
                if isinstance(verdict, TidingsError)
                else pb.TokenVerdict(valid=_verified(verdict))
                for verdict in verdicts
            ]
        )

    async def RevokeTokens(self, request: pb.RevokeTokensRequest, context: Context) -> pb.RevokeTokensResponse:
        revoked_before = await self._auth.revoke_all(request.user_id)
        return pb.RevokeTokensResponse(revoked_before=timestamp(revoked_before))

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        return pb.GetUserResponse(user=user_to_pb(await self._profiles.get(request.user_id)))

    async def BatchGetUsers(self, request: pb.BatchGetUsersRequest, context: Context) -> pb.BatchGetUsersResponse:
        users = await self._profiles.get_many(list(request.user_ids))
        return pb.BatchGetUsersResponse(users=[user_to_pb(user) for user in users])

    async def UpdateProfile(self, request: pb.UpdateProfileRequest, context: Context) -> pb.UpdateProfileResponse:
        change = ProfileChange(
            display_name=request.display_name if request.HasField("display_name") else None,
            bio=request.bio if request.HasField("bio") else None,
            avatar_url=request.avatar_url if request.HasField("avatar_url") else None,
        )
        return pb.UpdateProfileResponse(user=user_to_pb(await self._profiles.update(request.user_id, change)))

    async def SearchUsers(self, request: pb.SearchUsersRequest, context: Context) -> pb.SearchUsersResponse:
        users = await self._profiles.search(request.query, request.limit or 20)
        return pb.SearchUsersResponse(users=[user_to_pb(user) for user in users])

    async def BlockUser(self, request: pb.BlockUserRequest, context: Context) -> pb.BlockUserResponse:
        await self._profiles.block(request.user_id, request.blocked_user_id)
        return pb.BlockUserResponse()

    async def UnblockUser(self, request: pb.UnblockUserRequest, context: Context) -> pb.UnblockUserResponse:
        await self._profiles.unblock(request.user_id, request.blocked_user_id)
        return pb.UnblockUserResponse()

    async def CheckBlocked(self, request: pb.CheckBlockedRequest, context: Context) -> pb.CheckBlockedResponse:
        blocked = await self._profiles.blocked_either_way(request.user_id, request.other_user_id)
        return pb.CheckBlockedResponse(blocked=blocked)

    async def CheckBlockedPairs(
        self, request: pb.CheckBlockedPairsRequest, context: Context
    ) -> pb.CheckBlockedPairsResponse:
        pairs = [(pair.user_id, pair.other_user_id) for pair in request.pairs]
        return pb.CheckBlockedPairsResponse(blocked=await self._profiles.blocked_pairs(pairs))

    async def InspectUsers(self, request: pb.InspectUsersRequest, context: Context) -> pb.InspectUsersResponse:
        records = await self._operators.inspect(list(request.user_ids), list(request.usernames))
        return pb.InspectUsersResponse(users=[_record(record) for record in records])

    async def BanUser(self, request: pb.BanUserRequest, context: Context) -> pb.BanUserResponse:
        return pb.BanUserResponse(**_change(await self._operators.ban(request.user_id, _action(request.action))))

    async def UnbanUser(self, request: pb.UnbanUserRequest, context: Context) -> pb.UnbanUserResponse:
        return pb.UnbanUserResponse(**_change(await self._operators.unban(request.user_id, _action(request.action))))

    async def ResetPassword(self, request: pb.ResetPasswordRequest, context: Context) -> pb.ResetPasswordResponse:
        password = await self._operators.reset_password(request.user_id, _action(request.action))
        return pb.ResetPasswordResponse(temporary_password=password)


def _verified(claims: AccessClaims) -> pb.VerifyTokenResponse:
    return pb.VerifyTokenResponse(user_id=claims.user_id, expires_at=timestamp(claims.expires_at_ms))
