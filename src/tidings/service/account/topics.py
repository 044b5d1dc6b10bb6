"""The topics account publishes, declared once for account (the producer) and the jobs that consume them.

``account.user.updated`` is keyed by user id: one user's updates stay in one partition, in order.
``account.tokens.revoked`` is keyed by user id too: the push job ends that user's live connections.
"""

from __future__ import annotations

from typing import Any

from tidings.api.account.v1 import events_pb2
from tidings.pkg.bus.events import EventTopic

USER_UPDATED = EventTopic("account.user.updated", 12, events_pb2.UserUpdated)
TOKENS_REVOKED = EventTopic("account.tokens.revoked", 12, events_pb2.TokensRevoked)

ALL: tuple[EventTopic[Any], ...] = (USER_UPDATED, TOKENS_REVOKED)
