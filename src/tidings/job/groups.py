"""The job module's consumer groups and the topics each reads, published for those who watch them (the back
office's lag and dead-letter figures)."""

from __future__ import annotations

from typing import Any

from tidings.job.service import index, invalidate, persist, push
from tidings.pkg.bus.events import EventTopic

CONSUMER_GROUPS: dict[str, tuple[EventTopic[Any], ...]] = {
    persist.GROUP: (persist.TOPIC,),
    push.GROUP: push.TOPICS,
    index.GROUP: index.TOPICS,
    invalidate.GROUP: (invalidate.TOPIC,),
}
