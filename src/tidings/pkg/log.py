"""Structured logs: ECS JSON lines on stdout (for Filebeat/Logstash into Elasticsearch) or console text.

Every line carries ``service.name``, ``service.version``, ``event.dataset`` and, inside a traced operation,
``trace.id`` and ``span.id`` taken from the current OpenTelemetry span. ecs-logging fills those only from
Elastic APM, hence the small processor here. A last processor redacts values under keys that name secrets or
message text (``redact``), as a safety net: code should not log them in the first place.

Records of the standard ``logging`` module (uvicorn, aiokafka, alembic) go through the same formatter, so a process
writes one format only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import ecs_logging
import structlog
from opentelemetry import trace

EventDict = MutableMapping[str, Any]

REDACTED = "[REDACTED]"
# Keys whose values never reach a log line: credentials, and what users write to each other.
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "new_password",
        "old_password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "jwt",
        "jwt_secret",
        "authorization",
        "cookie",
        "set-cookie",
        "api_key",
        "apikey",
        "credentials",
        "text",
        "body",
        "message_text",
    }
)
_SECRET_SUFFIXES = ("_password", "_secret", "_token", ".password", ".authorization", ".text")


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)


def _redacted(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _is_secret(key) else _redacted(item, depth + 1)
            for key, item in value.items()
        }
    if type(value) in (list, tuple):  # not named tuples: their fields are not secrets, and rebuilding them fails
        return type(value)(_redacted(item, depth + 1) for item in value)
    return value


def redact(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Replace the values of keys like ``password``, ``token``, ``authorization`` or ``text`` (also nested)."""
    for key in list(event_dict):
        if key == "event":
            continue
        if _is_secret(key):
            event_dict[key] = REDACTED
        elif type(event_dict[key]) in (dict, list, tuple):
            event_dict[key] = _redacted(event_dict[key])
    return event_dict


def add_trace_ids(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Put the current span's ids in the line, so logs and traces of one request can be joined."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace.id", format(context.trace_id, "032x"))
        event_dict.setdefault("span.id", format(context.span_id, "016x"))
    return event_dict


class _ServiceFields:
    """Stamps the fields that say which process wrote the line."""

    def __init__(self, service_name: str, service_version: str) -> None:
        self._name = service_name
        self._version = service_version

    def __call__(self, _: Any, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service.name", self._name)
        event_dict.setdefault("service.version", self._version)
        event_dict.setdefault("event.dataset", f"{self._name}.{event_dict.pop('logger', 'app')}")
        return event_dict


def configure(
    *,
    service_name: str,
    service_version: str,
    level: str = "INFO",
    fmt: str = "ecs",
    stream: TextIO | None = None,
) -> None:
    """Set up structlog and the standard library's root logger to write one format to ``stream``."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        _ServiceFields(service_name, service_version),
        add_trace_ids,
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any
    if fmt == "ecs":
        renderer = ecs_logging.StructlogFormatter()
    else:
        shared.insert(0, structlog.processors.TimeStamper(fmt="iso", utc=True))
        shared.insert(0, structlog.processors.add_log_level)
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless we debug; httpx would write every request's URL, query (and so any
    # token in it) included, at INFO.
    for noisy in ("aiokafka", "opensearch", "urllib3", "httpx", "alembic.runtime.migration", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(level if level == "DEBUG" else "WARNING")

    structlog.configure(
        # filter_by_level first: a line below the level costs one check, not the whole chain (hot paths log).
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get(name: str = "app") -> structlog.stdlib.BoundLogger:
    """A logger whose lines carry ``event.dataset = <service>.<name>``."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
