"""The back office's JSON shapes: request bodies as the console (or a script) sends them, answers as it receives
them. Ids are decimal strings and times RFC 3339 UTC, as in the public API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tidings.admin.biz import model
from tidings.admin.biz.overview import Days, PipelineState
from tidings.pkg.edge import rfc3339, well_formed
from tidings.service.chat.message import Message

Text = Annotated[str, AfterValidator(well_formed)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    username: Text = Field(min_length=1, max_length=128)
    password: Text = Field(min_length=1, max_length=128)
    # The six digits of the operator's authenticator app, if they have a second factor.
    code: Text = Field(default="", max_length=16)
    # Answer the session token in the body for a script to send as a bearer token (no cookie is set).
    bearer: bool = False


class ReasonBody(Body):
    """Why: required, into the audit log (and, for a removed message, shown to the members)."""

    reason: Text = Field(min_length=1, max_length=500, pattern=r"\S")


class CreateOperatorBody(ReasonBody):
    username: Text = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: Text = Field(min_length=12, max_length=128)
    role: model.Role
    totp: bool = False


class OperatorOut(BaseModel):
    id: str
    username: str
    role: model.Role
    created_at: str

    @classmethod
    def of(cls, operator: model.Operator) -> OperatorOut:
        return cls(
            id=str(operator.id),
            username=operator.username,
            role=operator.role,
            created_at=rfc3339(operator.created_at_ms),
        )


class SessionOut(BaseModel):
    operator: OperatorOut
    csrf_token: str
    expires_at: str
    # Only when asked for with ``bearer``: send it as ``Authorization: Bearer <token>``.
    token: str | None = None


class CreatedOperatorOut(BaseModel):
    operator: OperatorOut
    # The authenticator app's enrolment link, shown once; null without a second factor.
    totp_uri: str | None


class OperatorsOut(BaseModel):
    operators: list[OperatorOut]


class UserRecordOut(BaseModel):
    id: str
    username: str
    display_name: str
    bio: str
    avatar_url: str
    created_at: str
    banned: bool
    last_active_at: str | None

    @classmethod
    def of(cls, record: model.UserRecord) -> UserRecordOut:
        user = record.user
        return cls(
            id=str(user.id),
            username=user.username,
            display_name=user.display_name,
            bio=user.bio,
            avatar_url=user.avatar_url,
            created_at=rfc3339(user.created_at_ms),
            banned=record.banned,
            last_active_at=rfc3339(record.last_active_at_ms) if record.last_active_at_ms is not None else None,
        )


class UsersOut(BaseModel):
    users: list[UserRecordOut]


class DeviceOut(BaseModel):
    session_id: str
    instance: str


class ConversationOut(BaseModel):
    id: str
    kind: str
    title: str
    owner_id: str
    member_ids: list[str]
    max_seq: int
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, c: model.ConversationSummary) -> ConversationOut:
        return cls(
            id=str(c.id),
            kind=c.kind,
            title=c.title,
            owner_id=str(c.owner_id),
            member_ids=[str(m) for m in c.member_ids],
            max_seq=c.max_seq,
            created_at=rfc3339(c.created_at_ms),
            updated_at=rfc3339(c.updated_at_ms),
        )


class UserDetailOut(BaseModel):
    user: UserRecordOut
    devices: list[DeviceOut]
    conversations: list[ConversationOut]

    @classmethod
    def of(cls, detail: model.UserDetail) -> UserDetailOut:
        return cls(
            user=UserRecordOut.of(detail.record),
            devices=[DeviceOut(session_id=d.session_id, instance=d.instance) for d in detail.devices],
            conversations=[ConversationOut.of(c) for c in detail.conversations],
        )


class MemberOut(BaseModel):
    user_id: str
    role: str
    read_seq: int
    joined_at: str


class ConversationDetailOut(BaseModel):
    conversation: ConversationOut
    members: list[MemberOut]
    message_count: int
    recalled_count: int

    @classmethod
    def of(cls, detail: model.ConversationDetail) -> ConversationDetailOut:
        return cls(
            conversation=ConversationOut.of(detail.conversation),
            members=[
                MemberOut(user_id=str(m.user_id), role=m.role, read_seq=m.read_seq, joined_at=rfc3339(m.joined_at_ms))
                for m in detail.members
            ],
            message_count=detail.message_count,
            recalled_count=detail.recalled_count,
        )


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    text: str
    created_at: str
    recalled: bool

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=str(m.id),
            conversation_id=str(m.conversation_id),
            seq=m.seq,
            sender_id=str(m.sender_id),
            text=m.text,
            created_at=rfc3339(m.created_at_ms),
            recalled=m.recalled,
        )


class PageOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class HitOut(BaseModel):
    message: MessageOut
    # [start, end) in Unicode code points of ``message.text``.
    highlights: list[tuple[int, int]]
    sender_name: str


class HitsOut(BaseModel):
    hits: list[HitOut]
    next_cursor: str | None

    @classmethod
    def of(cls, found: model.Hits) -> HitsOut:
        return cls(
            hits=[
                HitOut(message=MessageOut.of(h.message), highlights=list(h.highlights), sender_name=h.sender_name)
                for h in found.hits
            ],
            next_cursor=found.next_cursor,
        )


class PasswordOut(BaseModel):
    # Shown once: hand it to the user, who should change it.
    temporary_password: str


class AuditOut(BaseModel):
    id: str
    at: str
    operator_id: str
    operator: str
    action: str
    target_kind: str
    target: str
    reason: str
    trace_id: str
    before: dict[str, Any] | None
    outcome: Literal["ok", "failed", "unknown"]
    finished_at: str | None
    error: str
    after: dict[str, Any] | None

    @classmethod
    def of(cls, record: model.AuditRecord) -> AuditOut:
        entry, result = record.entry, record.result
        return cls(
            id=str(entry.id),
            at=rfc3339(entry.at_ms),
            operator_id=str(entry.operator_id),
            operator=entry.operator,
            action=entry.action,
            target_kind=entry.target_kind,
            target=entry.target,
            reason=entry.reason,
            trace_id=entry.trace_id,
            before=result.before if result is not None else None,
            outcome=record.outcome.value,
            finished_at=rfc3339(result.at_ms) if result is not None else None,
            error=result.error if result is not None else "",
            after=result.after if result is not None else None,
        )


class AuditPageOut(BaseModel):
    entries: list[AuditOut]
    # Pass as ``before`` for the next (older) page; null after the last.
    next_before: str | None


class DayOut(BaseModel):
    day: str
    messages: int
    active_users: int
    new_users: int
    new_conversations: int
    complete: bool


class TopOut(BaseModel):
    conversation_id: str
    messages: int


class DaysOut(BaseModel):
    days: list[DayOut]
    top_day: str | None
    top_conversations: list[TopOut]

    @classmethod
    def of(cls, found: Days) -> DaysOut:
        return cls(
            days=[
                DayOut(
                    day=rfc3339(a.start_ms)[:10],
                    messages=a.messages,
                    active_users=a.active_senders,
                    new_users=a.new_users,
                    new_conversations=a.new_conversations,
                    complete=a.complete,
                )
                for a in found.activity
            ],
            top_day=rfc3339(found.top_day_ms)[:10] if found.top_day_ms is not None else None,
            top_conversations=[TopOut(conversation_id=str(t.conversation_id), messages=t.messages) for t in found.top],
        )


class LagOut(BaseModel):
    group: str
    topic: str
    lag: int


class DeadLettersOut(BaseModel):
    topic: str
    count: int


class PipelineOut(BaseModel):
    lag: list[LagOut]
    dead_letters: list[DeadLettersOut]

    @classmethod
    def of(cls, state: PipelineState) -> PipelineOut:
        return cls(
            lag=[LagOut(group=g.group, topic=g.topic, lag=g.lag) for g in state.lag],
            dead_letters=[DeadLettersOut(topic=d.topic, count=d.count) for d in state.dead_letters],
        )
