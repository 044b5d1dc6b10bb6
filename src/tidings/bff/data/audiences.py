"""The bff's fan-out caches (conversation members for typing, a user's peers for presence) on the module's cache
store: Redis in production, shared by every instance so one invalidation reaches them all; in-process otherwise."""

from __future__ import annotations

from dataclasses import replace

from tidings.bff.biz.realtime.membership import Audiences, LocalReadThrough
from tidings.conf import RealtimeConf
from tidings.pkg.cache import JsonCodec
from tidings.pkg.cache.aside import CachePolicy
from tidings.pkg.cache.kit import CacheKit
from tidings.pkg.cache.ports import ReadThrough

IDS_SCHEMA = 1
IDS_CODEC: JsonCodec[tuple[int, ...]] = JsonCodec(IDS_SCHEMA, list, lambda data: tuple(int(v) for v in data))


def audiences(kit: CacheKit, conf: RealtimeConf) -> Audiences:
    """Keys carry ``realtime.route_prefix``, so fleets sharing one Redis keep apart; a TTL of 0 caches nothing."""
    prefix = f"{conf.route_prefix}:bff"

    def policy(ttl_s: float) -> CachePolicy:
        return replace(kit.policy, ttl_s=ttl_s, null_ttl_s=min(ttl_s, kit.policy.null_ttl_s))

    members: ReadThrough[int, tuple[int, ...]] = (
        kit.cache("members", IDS_CODEC, lambda cid: f"{prefix}:{{{cid}}}:members", policy=policy(conf.members_cache_s))
        if conf.members_cache_s > 0
        else LocalReadThrough(0, 1, kit.clock)
    )
    peers: ReadThrough[int, tuple[int, ...]] = (
        kit.cache("peers", IDS_CODEC, lambda uid: f"{prefix}:peers:{uid}", policy=policy(conf.peers_cache_s))
        if conf.peers_cache_s > 0
        else LocalReadThrough(0, 1, kit.clock)
    )
    return Audiences(members, peers)
