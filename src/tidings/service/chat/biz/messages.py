"""Messages: send (checks, then the ``Sender`` protocol), history by seq, read marks, recall."""

from __future__ import annotations

from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.pkg.clock import Clock
from tidings.pkg.logger import Logger
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.model import (
    MAX_TEXT_LENGTH,
    RECALL_WINDOW_MS,
    HistoryPage,
    Sent,
    client_msg_id_problem,
    history_limit,
    reason_problem,
    text_problem,
)
from tidings.service.chat.biz.ports import ConversationRepo, EventPublisher, HistoryCache, MessageRepo
from tidings.service.chat.biz.sending import Sender
from tidings.service.chat.message import Message


class Messages:
    def __init__(
        self,
        access: Access,
        conversations: ConversationRepo,
        messages: MessageRepo,
        sender: Sender,
        publisher: EventPublisher,
        history_cache: HistoryCache,
        clock: Clock,
        logger: Logger,
    ) -> None:
        self._access = access
        self._conversations = conversations
        self._messages = messages
        self._sender = sender
        self._publisher = publisher
        self._history_cache = history_cache
        self._clock = clock
        self._log = logger

    async def send(self, conversation_id: int, sender_id: int, client_msg_id: str, text: str) -> Sent:
        """Commit a message to the bus and answer its id and seq; a retry answers the original message."""
        if len(text) > MAX_TEXT_LENGTH:
            raise chat_errors.message_too_long(f"at most {MAX_TEXT_LENGTH} characters", field="text")
        problems = {"text": text_problem(text), "client_msg_id": client_msg_id_problem(client_msg_id)}
        errors.raise_for_fields({field: why for field, why in problems.items() if why})
        # Membership and blocks are checked by the sender, for a whole batch of sends at once.
        return await self._sender.send(conversation_id, sender_id, client_msg_id, text)

    async def history(
        self,
        user_id: int,
        conversation_id: int,
        *,
        after_seq: int | None,
        before_seq: int | None,
        limit: int,
        by_operator: bool = False,
    ) -> HistoryPage:
        """A page ascending by seq: after ``after_seq``, or the newest before ``before_seq`` (or overall). A member
        reads their conversation; an operator (``user_id``) reads any that is not deleted."""
        problems = {}
        if limit < 0:
            problems["limit"] = "must not be negative"
        if after_seq is not None and before_seq is not None:
            problems["before_seq"] = "give after_seq or before_seq, not both"
        if after_seq is not None and after_seq < 0:
            problems["after_seq"] = "must not be negative"
        if before_seq is not None and before_seq <= 0:
            problems["before_seq"] = "must be positive"
        errors.raise_for_fields(problems)
        if by_operator:
            await self._access.require_conversation(conversation_id)
        else:
            await self._access.gate(conversation_id, user_id)
        size = history_limit(limit)
        # One row more than asked says whether there are more in the direction of paging.
        if after_seq is not None:
            rows = await self._messages.after(conversation_id, after_seq, size + 1)
            return HistoryPage(tuple(rows[:size]), has_more=len(rows) > size)
        rows = await self._messages.before(conversation_id, before_seq, size + 1)
        return HistoryPage(tuple(rows[-size:]), has_more=len(rows) > size)

    async def mark_read(self, user_id: int, conversation_id: int, seq: int) -> int:
        """Move the caller's read mark forward to ``seq``, clamped to ``max_seq``; the mark afterwards."""
        if seq < 0:
            errors.raise_for_fields({"seq": "must not be negative"})
        conversation, member = await self._access.require_member(conversation_id, user_id)
        target = min(seq, conversation.max_seq)
        if target < member.read_seq:
            return member.read_seq
        read_seq = await self._conversations.mark_read(conversation_id, user_id, target)
        # Announced also when the mark was there already, so a retry after a failed publish announces it.
        if read_seq == target and target > 0:
            try:
                await self._publisher.conversation_read(conversation_id, user_id, target, self._clock.now_ms())
            except Exception as exc:
                raise common_errors.unavailable("the read mark is saved but could not be announced; retry") from exc
        return read_seq

    async def recall(
        self, conversation_id: int, message_id: int, user_id: int, *, by_operator: bool, moderation_reason: str = ""
    ) -> Message:
        """The sender within the recall window, or an operator (no checks), recalls a message; idempotent. An
        operator says why (``moderation_reason``, shown to the members); a sender gives no reason."""
        if by_operator:
            errors.raise_for_fields({"moderation_reason": why} if (why := reason_problem(moderation_reason)) else {})
            await self._access.require_conversation(conversation_id)
        else:
            if moderation_reason:
                errors.raise_for_fields({"moderation_reason": "only an operator removing a message gives one"})
            await self._access.require_member(conversation_id, user_id)
        message = await self._messages.get(conversation_id, message_id)
        if message is None:
            raise chat_errors.message_not_found("no such message", message_id=str(message_id))
        now = self._clock.now_ms()
        if not by_operator and message.sender_id != user_id:
            raise chat_errors.not_message_sender("only the sender may recall a message")
        # A recall that already happened is answered again (a retry), whatever the time.
        if not by_operator and not message.recalled and now - message.created_at_ms > RECALL_WINDOW_MS:
            raise chat_errors.recall_window_passed(
                "the recall window has passed", window_s=str(RECALL_WINDOW_MS // 1000)
            )
        recalled = await self._messages.recall(conversation_id, message_id)
        if recalled is None:
            raise chat_errors.message_not_found("no such message", message_id=str(message_id))
        try:
            await self._history_cache.forget(conversation_id)
        except Exception as exc:  # the window expires by itself; a stale text there is bounded by its TTL
            self._log.warning("dropping the recent window failed", error=repr(exc))
        try:
            await self._publisher.message_recalled(recalled, user_id, now, moderation_reason if by_operator else "")
        except Exception as exc:
            raise common_errors.unavailable("the message is recalled but could not be announced; retry") from exc
        return recalled
