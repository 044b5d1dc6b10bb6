"""The checks ``tidings chaos`` makes after its faults: each finds the failure it is named for."""

from __future__ import annotations

from tidings.bench import chaos
from tidings.bench.chaos import Ack, Person, Receiver

ALICE = Person(0, "10", "token-a", conversation="7")
BOB = Person(1, "11", "token-b", conversation="7")
INDEX = {0: ALICE, 1: BOB}


def ack(person: int, n: int, seq: int, at: float = 0.0) -> Ack:
    return Ack(person, f"m{person}-{n}", str(1000 + seq), seq, at, at, 1)


def stored(person: Person, n: int, seq: int) -> dict[str, object]:
    return {"id": str(1000 + seq), "seq": seq, "sender_id": person.id, "client_msg_id": f"m{person.index}-{n}"}


def test_stored_once_counts_lost_duplicated_changed_and_unacknowledged() -> None:
    acked = {"7": [ack(0, 0, 1), ack(0, 1, 2), ack(1, 0, 3), ack(1, 1, 4)]}
    history = [stored(ALICE, 0, 1), stored(ALICE, 1, 2), stored(ALICE, 1, 5), {**stored(BOB, 0, 3), "seq": 6}]
    history.append(stored(BOB, 2, 8))
    assert chaos.stored_once({"7": history}, acked, INDEX) == {
        "lost": 1,  # bob's second
        "duplicated": 1,  # alice's second, twice
        "changed": 1,  # bob's first, at another seq
        "unacknowledged_stored": 1,  # bob's third was never acknowledged
    }


def test_everything_stored_once_passes() -> None:
    acked = {"7": [ack(0, 0, 1), ack(1, 0, 2)]}
    assert set(chaos.stored_once({"7": [stored(ALICE, 0, 1), stored(BOB, 0, 2)]}, acked, INDEX).values()) == {0}


def test_a_seq_not_above_the_same_senders_previous_ack_is_out_of_order() -> None:
    assert chaos.out_of_order([ack(0, 0, 1, at=1), ack(1, 0, 2, at=2), ack(0, 1, 3, at=3)]) == 0
    assert chaos.out_of_order([ack(0, 0, 5, at=1), ack(0, 1, 3, at=2), ack(0, 2, 4, at=3)]) == 1


def test_a_message_others_got_live_well_before_a_connection_ended_must_have_reached_it() -> None:
    alice = Receiver(ALICE, endpoints=None)  # type: ignore[arg-type]  # no fetching here
    alice.spans = [[0.0, float("inf")]]
    alice.live = {"1001": 5.1, "1002": 18.1, "1003": 25.5, "1004": 40.1}
    alice.seen = {"1001": 1, "1002": 2, "1003": 3, "1004": 4}
    bob = Receiver(BOB, endpoints=None)  # type: ignore[arg-type]  # no fetching here
    bob.spans = [[0.0, 20.0], [30.0, float("inf")]]
    bob.seen = {"1001": 1, "1002": 2, "1003": 3}
    bob.live = {"1001": 5.1}
    acks = [ack(0, 0, 1, at=5), ack(0, 1, 2, at=18), ack(0, 2, 3, at=25), ack(0, 3, 4, at=40)]
    found = chaos.delivered({0: alice, 1: bob}, {"7": acks})
    # Bob got 1002 from history, yet it reached Alice 1.9 s before his connection ended: missed. 1003 was
    # acknowledged while he was disconnected: history's. 1004 reached Alice while his connection was healthy and
    # never reached him: missed, and missing.
    assert found["missed_live"] == 2
    assert sorted(found["missed_live_at"]) == [18, 40]
    assert (found["missing"], found["live"], found["deliveries"]) == (1, 5, 8)
