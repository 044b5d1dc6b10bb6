"""The JSON shapes of API.md: request bodies as clients send them, answers as they receive them.

Every id travels as a decimal string (snowflake ids exceed 2^53); requests also accept a JSON integer.
Timestamps are RFC 3339 UTC strings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from tidings.bff.biz import model
from tidings.pkg.edge import ID_SCHEMA, SAFE_INTEGER, Id, integral, rfc3339, well_formed
from tidings.service.account.user import Session, User
from tidings.service.chat.message import Message

# The account service's rules (service/account/biz/user.py), declared so schema-driven clients agree with them.
USERNAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{2,31}$"
# A user search: no control characters, and 2-64 of them between the spaces around it (account trims them).
USER_QUERY_PATTERN = r"^ *[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,62}[^\s\x00-\x1f\x7f-\x9f] *$"
# Contains something other than white space.
NOT_BLANK = r"\S"
# An http(s) URL of a plain host, port and path, or empty: a subset of what account accepts (any URI with a host),
# so every URL a schema-driven client makes from it is accepted.
URL_OR_EMPTY = r"^(https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?)?$"


class Body(BaseModel):
    """Every request body and frame: unknown keys ignored, every string field well-formed Unicode."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _well_formed(cls, value: object) -> object:
        return well_formed(value)


class RegisterBody(Body):
    username: str = Field(min_length=3, max_length=32, pattern=USERNAME_PATTERN)
    # Also refused (WEAK_PASSWORD): fewer than 8 characters other than spaces, or one character repeated.
    password: str = Field(min_length=8, max_length=128)
    display_name: str | None = Field(default=None, min_length=1, max_length=64, pattern=NOT_BLANK)


class LoginBody(Body):
    # Account's rules for a login (any length a username or password could have had, within bounds).
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=128)


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=4096)


class ProfileBody(Body):
    display_name: str | None = Field(default=None, min_length=1, max_length=64, pattern=NOT_BLANK)
    bio: str | None = Field(default=None, max_length=280)
    avatar_url: str | None = Field(default=None, max_length=512, pattern=URL_OR_EMPTY)


class CreateConversationBody(Body):
    """A direct conversation needs ``peer_id``, a group its ``title`` (declared with if/then for schema users)."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"kind": {"const": "group"}}},
            "then": {"required": ["title"], "properties": {"title": {"type": "string"}}},
            "else": {"required": ["peer_id"], "properties": {"peer_id": ID_SCHEMA}},
        }
    )

    kind: Literal["direct", "group"]
    peer_id: Id | None = None
    title: str | None = Field(default=None, min_length=1, max_length=128)
    # Chat's rules: at most 1,000 listed at creation, each once.
    member_ids: list[Id] | None = Field(default=None, max_length=1000, json_schema_extra={"uniqueItems": True})


class MembersBody(Body):
    user_ids: list[Id] = Field(min_length=1, max_length=1000, json_schema_extra={"uniqueItems": True})


class SendBody(Body):
    # One message of its sender (README, idempotent sends): printable ASCII without spaces.
    client_msg_id: str = Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")
    # 1-4,000 code points, not trimmed; checked by chat (a longer one is MESSAGE_TOO_LONG), declared here.
    text: str = Field(json_schema_extra={"minLength": 1, "maxLength": 4000})


class ReadBody(Body):
    # No seq comes near 2**53: the bound every JSON client holds exactly, declared and enforced alike.
    seq: Annotated[int, BeforeValidator(integral)] = Field(ge=0, le=SAFE_INTEGER, strict=True)


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    bio: str
    avatar_url: str
    created_at: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=str(user.id),
            username=user.username,
            display_name=user.display_name,
            bio=user.bio,
            avatar_url=user.avatar_url,
            created_at=rfc3339(user.created_at_ms),
        )


class SessionOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    expires_in: int

    @classmethod
    def of(cls, session: Session) -> SessionOut:
        return cls(
            user=UserOut.of(session.user),
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in_s,
        )


class UsersOut(BaseModel):
    users: list[UserOut]


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_msg_id: str
    text: str
    created_at: str
    recalled: bool

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=str(message.id),
            conversation_id=str(message.conversation_id),
            seq=message.seq,
            sender_id=str(message.sender_id),
            client_msg_id=message.client_msg_id,
            text=message.text,
            created_at=rfc3339(message.created_at_ms),
            recalled=message.recalled,
        )


class SpanOut(BaseModel):
    """Where a search matched a message's text: ``text[start:end]`` in Unicode code points."""

    start: int
    end: int


class FoundOut(MessageOut):
    """A message a search found (its ``client_msg_id`` is empty), with where the query matched its text (sorted,
    not overlapping; offsets, never markup) and its sender's display name."""

    highlights: list[SpanOut]
    sender_name: str

    @classmethod
    def found(cls, found: model.Found) -> FoundOut:
        return cls(
            **MessageOut.of(found.message).model_dump(),
            highlights=[SpanOut(start=start, end=end) for start, end in found.highlights],
            sender_name=found.sender_name,
        )


class SearchOut(BaseModel):
    messages: list[FoundOut]
    # Pass it as ``cursor`` for the next page; ``null`` after the last page.
    next_cursor: str | None


class SentOut(BaseModel):
    message: MessageOut


class ConversationOut(BaseModel):
    id: str
    kind: Literal["direct", "group"]
    title: str
    member_ids: list[str]
    max_seq: int
    read_seq: int
    unread_count: int
    last_message: MessageOut | None
    updated_at: str

    @classmethod
    def of(cls, conv: model.Conversation) -> ConversationOut:
        return cls(
            id=str(conv.id),
            kind=conv.kind.value,
            title=conv.title,
            member_ids=[str(member) for member in conv.member_ids],
            max_seq=conv.max_seq,
            read_seq=conv.read_seq,
            unread_count=conv.unread_count,
            last_message=MessageOut.of(conv.last_message) if conv.last_message else None,
            updated_at=rfc3339(conv.updated_at_ms),
        )


class ConversationsOut(BaseModel):
    conversations: list[ConversationOut]


class PageOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class SyncOut(BaseModel):
    me: UserOut
    conversations: list[ConversationOut]
    presence: dict[str, Literal["online", "offline"]]
