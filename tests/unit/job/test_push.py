"""The push job against fakes: who gets what, one Deliver per instance per batch, order, pruning, bounded retries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.job.fakes import FakeConversations
from tidings.api.account.v1 import events_pb2 as account_events
from tidings.api.chat.v1 import chat_pb2
from tidings.api.chat.v1 import events_pb2 as chat_events
from tidings.api.common.v1 import errors as common
from tidings.api.gateway.v1 import gateway_pb2
from tidings.job.biz.errors import InvalidEvent
from tidings.job.biz.push import Audience, Delivery, Pusher, PushOptions
from tidings.job.data.membership import CachedMembership
from tidings.job.data.telemetry import PushTelemetry
from tidings.job.service.push import PushHandler
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import UnknownEventVersion
from tidings.pkg.clock import FakeClock
from tidings.pkg.pbtime import timestamp
from tidings.realtime.model import Route
from tidings.service.account import topics as account_topics
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.biz.model import Kind

TOPICS = events.Topics()
A, B = "10.0.0.1:9080", "10.0.0.2:9080"
DIRECT, GROUP = 100, 200


def record(topic: events.EventTopic[events.M], key: int, payload: events.M, offset: int = 0) -> Record:
    event = events.encode(TOPICS, topic, events.id_key(key), payload)
    return Record(event.topic, 0, offset, event.key, event.value, event.headers)


def sent(conversation_id: int, seq: int, sender: int) -> Record:
    message = chat_pb2.Message(id=conversation_id * 1000 + seq, conversation_id=conversation_id, seq=seq)
    message.sender_id = sender
    return record(chat_topics.MESSAGE_SENT, conversation_id, chat_events.MessageSent(message=message), seq)


def read(conversation_id: int, user: int, seq: int) -> Record:
    payload = chat_events.ConversationRead(conversation_id=conversation_id, user_id=user, seq=seq)
    return record(chat_topics.CONVERSATION_READ, conversation_id, payload)


def recalled(conversation_id: int, seq: int, moderation_reason: str = "") -> Record:
    payload = chat_events.MessageRecalled(conversation_id=conversation_id, message_id=conversation_id * 1000 + seq)
    payload.seq = seq
    payload.moderation_reason = moderation_reason
    return record(chat_topics.MESSAGE_RECALLED, conversation_id, payload)


NOW_MS = 1_800_000_000_000


def revoked(user: int, cause: account_events.RevokeCause.ValueType, at_ms: int = NOW_MS) -> Record:
    payload = account_events.TokensRevoked(user_id=user, cause=cause, revoked_before=timestamp(at_ms))
    return record(account_topics.TOKENS_REVOKED, user, payload)


class FakeMembership:
    def __init__(self) -> None:
        self.audiences_by_id = {
            DIRECT: Audience(True, frozenset({1, 2})),
            GROUP: Audience(False, frozenset({1, 2, 3, 4})),
        }
        self.calls = 0

    async def audiences(self, conversation_ids: Sequence[int]) -> dict[int, Audience]:
        self.calls += 1
        return {cid: self.audiences_by_id[cid] for cid in conversation_ids if cid in self.audiences_by_id}


@dataclass
class FakeRoutes:
    routes: dict[int, dict[str, str]] = field(default_factory=dict)
    lookups: list[list[int]] = field(default_factory=list)
    removed: list[Route] = field(default_factory=list)

    async def routes_for(self, user_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        ids = list(user_ids)
        self.lookups.append(ids)
        return {user: dict(self.routes[user]) for user in ids if user in self.routes}

    async def remove(self, routes: Sequence[Route]) -> list[int]:
        self.removed.extend(routes)
        return []


@dataclass
class FakeDeliverer:
    """Records every call; ``failures[instance]`` calls fail first; ``gone[instance]`` sessions are reported gone."""

    calls: list[tuple[str, Sequence[Delivery[gateway_pb2.Event]]]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    gone: dict[str, set[str]] = field(default_factory=dict)
    error: Exception = field(default_factory=lambda: common.unavailable("bff down"))

    async def deliver(self, instance: str, deliveries: Sequence[Delivery[gateway_pb2.Event]]) -> list[str]:
        self.calls.append((instance, deliveries))
        if self.failures.get(instance, 0) > 0:
            self.failures[instance] -= 1
            raise self.error
        named = {session for d in deliveries for session in d.session_ids}
        return sorted(named & self.gone.get(instance, set()))

    def seen(self, instance: str) -> list[tuple[str, list[str]]]:
        """(event kind and seq, sessions) of every delivery to ``instance``, in call and request order."""
        out = []
        for to, deliveries in self.calls:
            if to == instance:
                for d in deliveries:
                    kind = d.event.WhichOneof("kind")
                    seq = getattr(d.event, str(kind)).seq if kind != "message_new" else d.event.message_new.message.seq
                    out.append((f"{kind}:{seq}", sorted(d.session_ids)))
        return out


class Harness:
    def __init__(self, options: PushOptions | None = None) -> None:
        self.registry = CollectorRegistry()
        self.membership = FakeMembership()
        self.routes = FakeRoutes(
            {
                1: {"s1a": A, "s1b": B},  # two devices on two instances
                2: {"s2": A},
                3: {"s3": B},
                # user 4 offline
            }
        )
        self.deliverer = FakeDeliverer()
        self.now = 0.0
        self.slept: list[float] = []

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            self.now += seconds

        pusher = Pusher(
            self.membership,
            self.routes,
            self.deliverer,
            PushTelemetry(self.registry),
            options=options,
            clock=lambda: self.now,
            sleep=sleep,
        )
        self.job = PushHandler(pusher, topics=TOPICS, clock=FakeClock(NOW_MS), revocation_fresh_s=60)

    def count(self, outcome: str) -> float:
        return self.registry.get_sample_value("tidings_push_deliveries_total", {"outcome": outcome}) or 0.0


async def test_one_deliver_per_instance_per_batch_in_event_order() -> None:
    h = Harness()
    await h.job.handle([sent(GROUP, 1, sender=1), sent(DIRECT, 1, sender=2), sent(GROUP, 2, sender=3)])
    assert sorted(instance for instance, _ in h.deliverer.calls) == [A, B]
    # One pipelined route lookup for every recipient of the batch.
    assert len(h.routes.lookups) == 1
    assert sorted(h.routes.lookups[0]) == [1, 2, 3, 4]
    assert h.deliverer.seen(A) == [
        ("message_new:1", ["s1a", "s2"]),
        ("message_new:1", ["s1a", "s2"]),
        ("message_new:2", ["s1a", "s2"]),
    ]
    # The sender's other device (s1b) gets its own message; the direct chat has nobody on B but user 1.
    assert h.deliverer.seen(B) == [
        ("message_new:1", ["s1b", "s3"]),
        ("message_new:1", ["s1b"]),
        ("message_new:2", ["s1b", "s3"]),
    ]
    assert h.count("queued") == 11


async def test_read_marks_go_to_the_reader_and_a_direct_peer_only() -> None:
    h = Harness()
    await h.job.handle([read(DIRECT, 1, 5), read(GROUP, 3, 7), read(GROUP, 99, 1)])
    assert h.deliverer.seen(A) == [("conversation_read:5", ["s1a", "s2"])]
    assert h.deliverer.seen(B) == [("conversation_read:5", ["s1b"]), ("conversation_read:7", ["s3"])]


async def test_recalls_reach_every_member_and_unknown_conversations_nobody() -> None:
    h = Harness()
    await h.job.handle([recalled(GROUP, 4), sent(999, 1, sender=1)])
    assert h.deliverer.seen(A) == [("message_recalled:4", ["s1a", "s2"])]
    assert h.deliverer.seen(B) == [("message_recalled:4", ["s1b", "s3"])]


async def test_a_revocation_ends_every_session_of_that_user_only_one_deliver_per_instance() -> None:
    h = Harness()
    await h.job.handle([revoked(1, account_events.REVOKE_CAUSE_BANNED), sent(DIRECT, 1, sender=2)])
    assert h.membership.calls == 1
    ended = [(instance, d) for instance, ds in h.deliverer.calls for d in ds if d.event.HasField("session_ended")]
    assert sorted((instance, list(d.session_ids)) for instance, d in ended) == [(A, ["s1a"]), (B, ["s1b"])]
    assert {(d.event.session_ended.reason, d.event.session_ended.message) for _, d in ended} == {
        ("USER_BANNED", "Your account was suspended by an operator.")
    }
    assert sorted(instance for instance, _ in h.deliverer.calls) == [A, B]


@pytest.mark.parametrize(
    "cause",
    [
        account_events.REVOKE_CAUSE_LOGOUT_ALL,
        account_events.REVOKE_CAUSE_PASSWORD_RESET,
        account_events.REVOKE_CAUSE_UNSPECIFIED,
    ],
)
async def test_a_revocation_other_than_a_ban_ends_sessions_as_token_revoked(
    cause: account_events.RevokeCause.ValueType,
) -> None:
    h = Harness()
    await h.job.handle([revoked(2, cause)])
    assert h.membership.calls == 0
    ((instance, (delivery,)),) = h.deliverer.calls
    assert (instance, list(delivery.session_ids)) == (A, ["s2"])
    assert delivery.event.session_ended.reason == "TOKEN_REVOKED"
    assert delivery.event.session_ended.message


async def test_a_revocation_read_long_after_it_happened_ends_nothing() -> None:
    h = Harness()
    await h.job.handle([revoked(1, account_events.REVOKE_CAUSE_BANNED, at_ms=NOW_MS - 61_000)])
    assert h.deliverer.calls == []
    await h.job.handle([revoked(1, account_events.REVOKE_CAUSE_BANNED, at_ms=NOW_MS - 59_000)])
    assert sorted(instance for instance, _ in h.deliverer.calls) == [A, B]


async def test_an_operators_removal_reaches_every_member_as_removed_with_its_reason() -> None:
    h = Harness()
    await h.job.handle([recalled(GROUP, 4, moderation_reason="spam <b>links</b>")])
    assert h.deliverer.seen(A) == [("message_removed:4", ["s1a", "s2"])]
    assert h.deliverer.seen(B) == [("message_removed:4", ["s1b", "s3"])]
    (_, deliveries), *_ = h.deliverer.calls
    assert deliveries[0].event.message_removed == gateway_pb2.MessageRemoved(
        conversation_id=GROUP, message_id=GROUP * 1000 + 4, seq=4, reason="spam <b>links</b>"
    )


async def test_nobody_online_means_no_call() -> None:
    h = Harness()
    h.routes.routes = {}
    await h.job.handle([sent(GROUP, 1, sender=1)])
    assert h.deliverer.calls == []


async def test_gone_sessions_are_pruned_with_their_user_and_instance() -> None:
    h = Harness()
    h.deliverer.gone = {B: {"s3"}}
    await h.job.handle([sent(GROUP, 1, sender=1)])
    assert h.routes.removed == [(3, "s3", B)]
    assert h.count("gone") == 1
    assert h.count("queued") == 3


async def test_a_failing_instance_is_retried_within_the_bound_then_left_to_sync() -> None:
    h = Harness(PushOptions(attempts=3, backoff_s=0.1, down_s=5))
    h.deliverer.failures = {B: 99}
    await h.job.handle([sent(GROUP, 1, sender=1)])
    assert [instance for instance, _ in h.deliverer.calls].count(B) == 3
    assert h.slept == [0.1, 0.2]
    assert h.count("failed") == 2
    assert h.count("queued") == 2  # A was not held back
    # Within the pause the instance is not called; the next batch's A deliveries still go out.
    await h.job.handle([sent(GROUP, 2, sender=1)])
    assert [instance for instance, _ in h.deliverer.calls].count(B) == 3
    assert h.count("failed") == 4
    # After the pause it is tried again.
    h.now += 5
    h.deliverer.failures = {}
    await h.job.handle([sent(GROUP, 3, sender=1)])
    assert h.deliverer.seen(B)[-1] == ("message_new:3", ["s1b", "s3"])


async def test_a_transient_failure_is_retried_and_delivered_once() -> None:
    h = Harness()
    h.deliverer.failures = {A: 1}
    await h.job.handle([sent(DIRECT, 1, sender=1)])
    assert [instance for instance, _ in h.deliverer.calls].count(A) == 2
    assert h.count("failed") == 0
    assert h.registry.get_sample_value("tidings_push_deliver_retries_total") == 1


async def test_a_refused_request_is_not_retried() -> None:
    h = Harness()
    h.deliverer.failures = {A: 1}
    h.deliverer.error = common.invalid_argument("bad request")
    await h.job.handle([sent(DIRECT, 1, sender=1)])
    assert [instance for instance, _ in h.deliverer.calls].count(A) == 1
    assert h.count("failed") == 2


async def test_unknown_event_versions_and_bad_events_are_refused() -> None:
    h = Harness()
    good = sent(GROUP, 1, sender=1)
    future = Record(good.topic, 0, 1, good.key, good.value, ((events.EVENT_TYPE, b"x"), (events.EVENT_VERSION, b"2")))
    with pytest.raises(UnknownEventVersion) as raised:
        await h.job.handle([good, future])
    assert raised.value.record is future
    with pytest.raises(InvalidEvent):
        await h.job.handle([sent(0, 1, sender=1)])
    with pytest.raises(InvalidEvent):
        await h.job.handle([revoked(0, account_events.REVOKE_CAUSE_BANNED)])


async def test_membership_is_cached_briefly_and_bounded_in_members() -> None:
    now = [0.0]
    source = FakeConversations()
    source.seed(1, Kind.DIRECT, [1, 2])
    source.seed(2, Kind.GROUP, list(range(1, 51)))
    source.seed(3, Kind.GROUP, list(range(1, 41)))
    cache = CachedMembership(source, ttl_s=2, max_members=60, clock=lambda: now[0])
    first = await cache.audiences([1, 2, 404])
    assert first == {1: Audience(True, frozenset({1, 2})), 2: Audience(False, frozenset(range(1, 51)))}
    await cache.audiences([1, 2])
    assert source.reads == 1
    # 40 more members push the least recently used group (50) out; the direct chat stays.
    await cache.audiences([1])
    await cache.audiences([3])
    await cache.audiences([1, 3])
    assert source.reads == 2
    await cache.audiences([2])
    assert source.reads == 3
    now[0] = 2.5
    await cache.audiences([1])
    assert source.reads == 4


async def test_a_member_removed_between_two_sends_hears_nothing_of_the_second() -> None:
    """As wired by default: every batch reads its audiences fresh, so a removal is heard at once (API.md)."""
    source = FakeConversations()
    source.seed(GROUP, Kind.GROUP, [1, 2, 3])
    h = Harness()
    h.job = PushHandler(
        Pusher(CachedMembership(source), h.routes, h.deliverer, PushTelemetry(CollectorRegistry())),
        topics=TOPICS,
        clock=FakeClock(NOW_MS),
    )
    await h.job.handle([sent(GROUP, 1, sender=1)])
    assert h.deliverer.seen(B) == [("message_new:1", ["s1b", "s3"])]
    assert await source.remove_member(GROUP, 3, now_ms=NOW_MS)
    await h.job.handle([sent(GROUP, 2, sender=1), recalled(GROUP, 1)])
    assert h.deliverer.seen(B)[1:] == [("message_new:2", ["s1b"]), ("message_recalled:1", ["s1b"])]
