"""The address the bff writes into its routes: its internal listener, the one the push job dials for Deliver."""

from __future__ import annotations

import pytest

from tidings.bff.wire import instance_address
from tidings.conf import BffConf, RealtimeConf, Settings
from tidings.pkg.conf import ConfigError, Listen

LOCAL = BffConf(http=Listen(port=8080), grpc=Listen(port=9080), internal_grpc=Listen(port=9180))


def test_routes_hold_the_internal_listener_not_the_public_grpc_port() -> None:
    assert instance_address(LOCAL, RealtimeConf()) == "127.0.0.1:9180"


def test_advertise_wins_over_the_internal_listen_address() -> None:
    assert instance_address(LOCAL, RealtimeConf(advertise="10.1.2.3:9180")) == "10.1.2.3:9180"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_listen_address_without_advertise_is_refused_by_name(host: str) -> None:
    conf = LOCAL.model_copy(update={"internal_grpc": Listen(host=host, port=9180)})
    with pytest.raises(ValueError, match=r"realtime\.advertise"):
        instance_address(conf, RealtimeConf())


def test_moving_one_bff_port_from_the_environment_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_MODULES__BFF__HTTP__PORT", "18080")
    bff = Settings().modules.bff
    assert (bff.http.port, bff.grpc, bff.internal_grpc.port, bff.metrics.port) == (18080, Listen(port=9080), 9180, 8086)
    monkeypatch.setenv("TIDINGS_MODULES__BFF__INTERNAL_GRPC__PORT", "19180")
    assert Settings().modules.bff.internal_grpc.port == 19180


def test_reflection_and_api_docs_are_off_on_the_public_ports_by_default() -> None:
    bff = Settings().modules.bff
    assert not bff.reflection
    assert not bff.docs


def test_the_bff_and_the_push_job_need_the_internal_secret() -> None:
    with pytest.raises(ConfigError, match=r"auth\.internal_secret"):
        Settings().auth.require_internal_secret()
