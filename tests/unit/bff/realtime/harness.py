"""Several bff instances in one test: hubs sharing one in-process route table, account and chat fakes, a fake
clock, and a relay that hands ``Deliver`` calls to the hub of the named instance (or fails, if it is down)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from prometheus_client import CollectorRegistry

from tests.unit.bff.fakes import FakeAccounts, FakeChats
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Identity
from tidings.bff.biz.realtime.events import Envelope, Event, Outbound
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.biz.realtime.membership import Audiences
from tidings.bff.biz.realtime.session import Session
from tidings.bff.data.metrics import PrometheusRealtimeMetrics
from tidings.bff.wire import quotas, realtime_options
from tidings.pkg import log
from tidings.pkg.clock import FakeClock
from tidings.pkg.conf import LimitsConf, RealtimeConf
from tidings.pkg.ratelimit import MemoryRateLimiter
from tidings.realtime.routes import MemoryRouteTable

START_WALL_MS = 1_900_000_000_000
CONF = RealtimeConf(queue_size=8, idle_timeout_s=75, route_ttl_s=90, reverify_interval_s=60)


class FakeRelay:
    def __init__(self) -> None:
        self.hubs: dict[str, Hub] = {}
        self.down: set[str] = set()
        self.calls: list[tuple[str, list[tuple[list[str], Event]]]] = []
        self.closed = False

    async def deliver(self, instance: str, deliveries: Sequence[tuple[Sequence[str], Event]]) -> list[str]:
        self.calls.append((instance, [(list(ids), event) for ids, event in deliveries]))
        if instance in self.down or instance not in self.hubs:
            raise common_errors.unavailable(f"{instance} is down")
        return [gone for ids, event in deliveries for gone in self.hubs[instance].deliver(ids, Envelope(event))]

    async def close(self) -> None:
        self.closed = True


class Cluster:
    def __init__(self, conf: RealtimeConf = CONF) -> None:
        self.conf = conf
        self.clock = FakeClock(now_ms=START_WALL_MS, monotonic=1000.0)
        self.accounts = FakeAccounts()
        self.chats = FakeChats()
        self.routes = MemoryRouteTable(ttl_s=conf.route_ttl_s, clock=self.clock)
        self.relay = FakeRelay()
        self.registry = CollectorRegistry()
        self.metrics = PrometheusRealtimeMetrics(self.registry)
        self._ids = 0
        self._hubs: list[Hub] = []
        # Shared by the hubs as the fleet's Redis is: one invalidation reaches every instance.
        self.audiences = Audiences.local(conf.members_cache_s, conf.peers_cache_s, self.clock.monotonic)
        self.quotas = quotas(
            MemoryRateLimiter(clock_us=lambda: int(self.clock.monotonic() * 1_000_000)), LimitsConf(), conf
        )

    def hub(self, instance: str = "10.0.0.1:9080") -> Hub:
        hub = Hub(
            instance=instance,
            options=realtime_options(self.conf),
            routes=self.routes,
            relay=self.relay,
            accounts=self.accounts,
            chats=self.chats,
            metrics=self.metrics,
            quotas=self.quotas,
            request_timeout_s=5,
            logger=log.get("realtime"),
            clock=self.clock,
            new_id=self._new_id,
            audiences=self.audiences,
        )
        self.relay.hubs[instance] = hub
        self._hubs.append(hub)
        return hub

    async def close(self) -> None:
        """Let every hub finish its background work (route removals, presence), as a test's last step."""
        for hub in self._hubs:
            await hub.drain()

    def frames(self, hub: Hub) -> Frames:
        return Frames(hub, self.chats, self.accounts)

    def _new_id(self) -> str:
        self._ids += 1
        return f"session-{self._ids}"

    def user(self, name: str) -> tuple[int, str]:
        return self.accounts.add(name)

    async def connect(self, hub: Hub, token: str, transport: str = "ws") -> Session:
        identity: Identity = await self.accounts.identify(token)
        return await hub.connect(identity, token, transport)

    def closes(self, reason: str, transport: str = "ws") -> float:
        labels = {"transport": transport, "reason": reason}
        return self.registry.get_sample_value("tidings_bff_connection_closes_total", labels) or 0.0

    def connections(self, transport: str = "ws") -> float:
        return self.registry.get_sample_value("tidings_bff_connections", {"transport": transport}) or 0.0


async def waiting(session: Session) -> list[Outbound]:
    """Every frame queued on ``session`` so far (taken off its outbox)."""
    return [frame for _ in range(session.pending) if (frame := await session.next()) is not None]


async def events(session: Session) -> list[Event]:
    """The events queued on ``session`` so far, without the answers to its frames."""
    return [frame.event for frame in await waiting(session) if isinstance(frame, Envelope)]


async def cluster_of(conf: RealtimeConf = CONF) -> AsyncIterator[Cluster]:
    """A fixture body: the cluster, drained after the test."""
    cluster = Cluster(conf)
    yield cluster
    await cluster.close()
