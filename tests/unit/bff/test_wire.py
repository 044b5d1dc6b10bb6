"""The address the bff writes into its routes: the one the push job dials to reach this very instance."""

from __future__ import annotations

import pytest

from tidings.bff.wire import instance_address
from tidings.pkg.conf import Listen, ModuleConf, RealtimeConf

LOCAL = ModuleConf(http=Listen(port=8080), grpc=Listen(port=9080))


def test_the_grpc_listen_address_serves_one_machine() -> None:
    assert instance_address(LOCAL, RealtimeConf()) == "127.0.0.1:9080"


def test_advertise_wins_over_dial_which_wins_over_the_listen_address() -> None:
    dialed = LOCAL.model_copy(update={"dial": "bff-7.internal:9080"})
    assert instance_address(dialed, RealtimeConf()) == "bff-7.internal:9080"
    assert instance_address(dialed, RealtimeConf(advertise="10.1.2.3:9080")) == "10.1.2.3:9080"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_listen_address_without_advertise_is_refused_by_name(host: str) -> None:
    conf = ModuleConf(http=Listen(port=8080), grpc=Listen(host=host, port=9080))
    with pytest.raises(ValueError, match=r"realtime\.advertise"):
        instance_address(conf, RealtimeConf())


def test_a_bff_without_grpc_cannot_take_live_connections() -> None:
    with pytest.raises(ValueError, match=r"modules\.bff\.grpc"):
        instance_address(ModuleConf(http=Listen(port=8080)), RealtimeConf())
