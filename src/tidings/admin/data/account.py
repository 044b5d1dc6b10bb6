"""``Accounts`` over the account service's gRPC API (its operator calls)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from tidings.admin.biz.model import UserRecord
from tidings.api.account.v1 import account_pb2 as pb
from tidings.api.account.v1 import account_pb2_grpc as pb_grpc
from tidings.pkg.pbtime import millis
from tidings.service.account.store.records import user_from_pb


def record_from_pb(record: pb.UserRecord) -> UserRecord:
    return UserRecord(
        user_from_pb(record.user),
        record.banned,
        millis(record.last_active_at) if record.HasField("last_active_at") else None,
    )


class GrpcAccounts:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.AccountServiceStub(channel)

    async def inspect(self, user_ids: Sequence[int] = (), usernames: Sequence[str] = ()) -> list[UserRecord]:
        if not user_ids and not usernames:
            return []
        response = await self._stub.InspectUsers(pb.InspectUsersRequest(user_ids=user_ids, usernames=usernames))
        return [record_from_pb(record) for record in response.users]

    async def ban(self, user_id: int, operator_id: int, reason: str) -> tuple[UserRecord, UserRecord]:
        request = pb.BanUserRequest(user_id=user_id, action=_action(operator_id, reason))
        response = await self._stub.BanUser(request)
        return record_from_pb(response.before), record_from_pb(response.after)

    async def unban(self, user_id: int, operator_id: int, reason: str) -> tuple[UserRecord, UserRecord]:
        request = pb.UnbanUserRequest(user_id=user_id, action=_action(operator_id, reason))
        response = await self._stub.UnbanUser(request)
        return record_from_pb(response.before), record_from_pb(response.after)

    async def reset_password(self, user_id: int, operator_id: int, reason: str) -> str:
        request = pb.ResetPasswordRequest(user_id=user_id, action=_action(operator_id, reason))
        password: str = (await self._stub.ResetPassword(request)).temporary_password
        return password

    async def search(self, query: str, limit: int) -> list[int]:
        response = await self._stub.SearchUsers(pb.SearchUsersRequest(query=query, limit=limit))
        return [user.id for user in response.users]


def _action(operator_id: int, reason: str) -> pb.OperatorAction:
    return pb.OperatorAction(operator_id=operator_id, reason=reason)
