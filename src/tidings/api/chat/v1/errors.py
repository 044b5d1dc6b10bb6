"""Generated from api/ by scripts/protogen.py. Do not edit."""

# The error reasons of tidings.chat.v1, from api/tidings/chat/v1/error_reason.proto.
from __future__ import annotations

from tidings.pkg.errors.base import Reason, TidingsError

DOMAIN = "tidings.chat.v1"

CONVERSATION_NOT_FOUND = Reason(DOMAIN, "CONVERSATION_NOT_FOUND", 404)
NOT_A_MEMBER = Reason(DOMAIN, "NOT_A_MEMBER", 403)
MESSAGE_NOT_FOUND = Reason(DOMAIN, "MESSAGE_NOT_FOUND", 404)
MESSAGE_TOO_LONG = Reason(DOMAIN, "MESSAGE_TOO_LONG", 400)
RECALL_WINDOW_PASSED = Reason(DOMAIN, "RECALL_WINDOW_PASSED", 409)
NOT_MESSAGE_SENDER = Reason(DOMAIN, "NOT_MESSAGE_SENDER", 403)
NOT_GROUP_OWNER = Reason(DOMAIN, "NOT_GROUP_OWNER", 403)
NOT_A_GROUP = Reason(DOMAIN, "NOT_A_GROUP", 400)
GROUP_TOO_LARGE = Reason(DOMAIN, "GROUP_TOO_LARGE", 400)
USER_BLOCKED = Reason(DOMAIN, "USER_BLOCKED", 403)
CLIENT_MSG_ID_REUSED = Reason(DOMAIN, "CLIENT_MSG_ID_REUSED", 409)

REASONS = (
    CONVERSATION_NOT_FOUND,
    NOT_A_MEMBER,
    MESSAGE_NOT_FOUND,
    MESSAGE_TOO_LONG,
    RECALL_WINDOW_PASSED,
    NOT_MESSAGE_SENDER,
    NOT_GROUP_OWNER,
    NOT_A_GROUP,
    GROUP_TOO_LARGE,
    USER_BLOCKED,
    CLIENT_MSG_ID_REUSED,
)


def conversation_not_found(message: str, /, **metadata: str) -> TidingsError:
    """No such conversation, or the caller cannot see it. (404)"""
    return CONVERSATION_NOT_FOUND.error(message, **metadata)


def is_conversation_not_found(error: BaseException | None) -> bool:
    """Whether ``error`` is CONVERSATION_NOT_FOUND."""
    return CONVERSATION_NOT_FOUND.matches(error)


def not_a_member(message: str, /, **metadata: str) -> TidingsError:
    """The caller can see the conversation but is not (or no longer) a member. (403)"""
    return NOT_A_MEMBER.error(message, **metadata)


def is_not_a_member(error: BaseException | None) -> bool:
    """Whether ``error`` is NOT_A_MEMBER."""
    return NOT_A_MEMBER.matches(error)


def message_not_found(message: str, /, **metadata: str) -> TidingsError:
    """No such message in this conversation. (404)"""
    return MESSAGE_NOT_FOUND.error(message, **metadata)


def is_message_not_found(error: BaseException | None) -> bool:
    """Whether ``error`` is MESSAGE_NOT_FOUND."""
    return MESSAGE_NOT_FOUND.matches(error)


def message_too_long(message: str, /, **metadata: str) -> TidingsError:
    """Message text is longer than 4,000 Unicode code points. (400)"""
    return MESSAGE_TOO_LONG.error(message, **metadata)


def is_message_too_long(error: BaseException | None) -> bool:
    """Whether ``error`` is MESSAGE_TOO_LONG."""
    return MESSAGE_TOO_LONG.matches(error)


def recall_window_passed(message: str, /, **metadata: str) -> TidingsError:
    """The sender may recall a message only within the recall window; `metadata.window_s` says how long it is. (409)"""
    return RECALL_WINDOW_PASSED.error(message, **metadata)


def is_recall_window_passed(error: BaseException | None) -> bool:
    """Whether ``error`` is RECALL_WINDOW_PASSED."""
    return RECALL_WINDOW_PASSED.matches(error)


def not_message_sender(message: str, /, **metadata: str) -> TidingsError:
    """Only the sender (or an operator) may recall a message. (403)"""
    return NOT_MESSAGE_SENDER.error(message, **metadata)


def is_not_message_sender(error: BaseException | None) -> bool:
    """Whether ``error`` is NOT_MESSAGE_SENDER."""
    return NOT_MESSAGE_SENDER.matches(error)


def not_group_owner(message: str, /, **metadata: str) -> TidingsError:
    """Only the group's owner may remove other members. (403)"""
    return NOT_GROUP_OWNER.error(message, **metadata)


def is_not_group_owner(error: BaseException | None) -> bool:
    """Whether ``error`` is NOT_GROUP_OWNER."""
    return NOT_GROUP_OWNER.matches(error)


def not_a_group(message: str, /, **metadata: str) -> TidingsError:
    """Members can be added to or removed from groups only, not direct conversations. (400)"""
    return NOT_A_GROUP.error(message, **metadata)


def is_not_a_group(error: BaseException | None) -> bool:
    """Whether ``error`` is NOT_A_GROUP."""
    return NOT_A_GROUP.matches(error)


def group_too_large(message: str, /, **metadata: str) -> TidingsError:
    """The group would exceed its member limit; `metadata.limit` says what it is. (400)"""
    return GROUP_TOO_LARGE.error(message, **metadata)


def is_group_too_large(error: BaseException | None) -> bool:
    """Whether ``error`` is GROUP_TOO_LARGE."""
    return GROUP_TOO_LARGE.matches(error)


def user_blocked(message: str, /, **metadata: str) -> TidingsError:
    """The peer has blocked the caller (or the caller them), so a direct conversation with them cannot be started or
    written to, and they cannot be added to a group (`metadata.user_ids` lists who). (403)
    """
    return USER_BLOCKED.error(message, **metadata)


def is_user_blocked(error: BaseException | None) -> bool:
    """Whether ``error`` is USER_BLOCKED."""
    return USER_BLOCKED.matches(error)


def client_msg_id_reused(message: str, /, **metadata: str) -> TidingsError:
    """The sender already used this client_msg_id in another conversation; `metadata.conversation_id` names it. A
    client_msg_id identifies one message of its sender: use a fresh one for every new message. (409)
    """
    return CLIENT_MSG_ID_REUSED.error(message, **metadata)


def is_client_msg_id_reused(error: BaseException | None) -> bool:
    """Whether ``error`` is CLIENT_MSG_ID_REUSED."""
    return CLIENT_MSG_ID_REUSED.matches(error)
