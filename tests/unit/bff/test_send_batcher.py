"""The bff's sends to chat in batches: each send answered on its own, few calls under load, deadlines kept."""

from __future__ import annotations

import asyncio

import pytest

from tidings.api.chat.v1 import chat_pb2 as pb
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.data.chat import SendBatcher
from tidings.pkg import errors
from tidings.pkg.middleware import deadline
from tidings.pkg.transport.grpc import SHARD_KEY


class FakeChat:
    """``SendMessages`` answering each send by its text: ``refuse`` is NOT_A_MEMBER, anything else is sent."""

    def __init__(self, *, delay_s: float = 0.01) -> None:
        self.calls: list[list[pb.BatchedSend]] = []
        self.keys: list[str] = []
        self.delay_s = delay_s
        self.down = False

    async def SendMessages(
        self,
        request: pb.SendMessagesRequest,
        timeout: float | None = None,  # noqa: ASYNC109 - the stub's signature
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> pb.SendMessagesResponse:
        self.calls.append(list(request.sends))
        self.keys.append(dict(metadata)[SHARD_KEY])
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise common_errors.unavailable("chat is down")
        outcomes = []
        for n, batched in enumerate(request.sends):
            if batched.send.text == "refuse":
                refusal = pb.SendError(code=403, reason="NOT_A_MEMBER", domain="tidings.chat.v1", message="no")
                outcomes.append(pb.SendOutcome(error=refusal))
            else:
                message = pb.Message(id=n + 1, conversation_id=batched.send.conversation_id, text=batched.send.text)
                outcomes.append(pb.SendOutcome(sent=pb.SendMessageResponse(message=message)))
        return pb.SendMessagesResponse(outcomes=outcomes)


def request(text: str, n: int = 0, conversation_id: int = 7) -> pb.SendMessageRequest:
    return pb.SendMessageRequest(conversation_id=conversation_id, sender_id=1, client_msg_id=f"c{n}", text=text)


async def test_under_load_many_sends_travel_in_few_calls_and_each_gets_its_own_answer() -> None:
    chat = FakeChat()
    batcher = SendBatcher(chat, max_calls=2)  # type: ignore[arg-type]
    answers = await asyncio.gather(*(batcher.send(request(f"m{n}", n)) for n in range(200)))
    assert [answer.message.text for answer in answers] == [f"m{n}" for n in range(200)]
    assert sum(len(call) for call in chat.calls) == 200
    assert len(chat.calls) <= 4
    # Every send carries the trace context of its own request.
    assert all(set(batched.trace_context) <= {"traceparent", "tracestate"} for call in chat.calls for batched in call)


async def test_a_refused_send_fails_alone() -> None:
    batcher = SendBatcher(FakeChat())  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        batcher.send(request("fine", 1)), batcher.send(request("refuse", 2)), return_exceptions=True
    )
    assert isinstance(outcomes[0], pb.SendMessageResponse)
    assert isinstance(outcomes[1], errors.TidingsError)
    assert (outcomes[1].code, outcomes[1].reason, outcomes[1].domain) == (403, "NOT_A_MEMBER", "tidings.chat.v1")


async def test_a_failed_call_fails_each_of_its_sends_with_its_own_error() -> None:
    chat = FakeChat()
    chat.down = True
    batcher = SendBatcher(chat)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(*(batcher.send(request("x", n)) for n in range(3)), return_exceptions=True)
    assert all(common_errors.is_unavailable(outcome) for outcome in outcomes)
    assert len({id(outcome) for outcome in outcomes}) == 3


async def test_a_send_past_its_deadline_is_answered_deadline_exceeded() -> None:
    batcher = SendBatcher(FakeChat(delay_s=1.0))  # type: ignore[arg-type]
    with deadline.scope(0.05), pytest.raises(errors.TidingsError) as late:
        await batcher.send(request("slow"))
    assert common_errors.is_deadline_exceeded(late.value)


async def test_each_call_holds_the_sends_of_one_shard_of_conversations_and_carries_it_as_its_key() -> None:
    chat = FakeChat()
    batcher = SendBatcher(chat, shards=4)  # type: ignore[arg-type]
    sends = [request(f"m{n}", n, conversation_id=100 + n % 8) for n in range(64)]
    answers = await asyncio.gather(*(batcher.send(send) for send in sends))
    assert [answer.message.text for answer in answers] == [send.text for send in sends]
    for key, call in zip(chat.keys, chat.calls, strict=True):
        # The keyed channel sends every call of one key to the same chat instance.
        assert {batched.send.conversation_id % 4 for batched in call} == {int(key)}
    assert set(chat.keys) == {"0", "1", "2", "3"}
