"""``KafkaEventBus`` refuses a replication that no broker could satisfy before it opens any connection."""

from __future__ import annotations

import pytest

from tidings.pkg.bus.kafka import KafkaEventBus


@pytest.mark.parametrize(("replication_factor", "min_insync_replicas"), [(0, None), (1, 2), (3, 4), (3, 0)])
def test_an_isr_minimum_outside_the_replicas_is_refused(
    replication_factor: int, min_insync_replicas: int | None
) -> None:
    with pytest.raises(ValueError, match=r"min\.insync\.replicas"):
        KafkaEventBus("127.0.0.1:1", replication_factor=replication_factor, min_insync_replicas=min_insync_replicas)
