"""The logger use cases are handed: structured events with fields, as a Protocol, so ``biz`` logs without importing
the logging library. Wires hand them ``tidings.pkg.log.get(name)``, which satisfies it."""

from __future__ import annotations

from typing import Any, Protocol


class Logger(Protocol):
    def info(self, event: str, *args: Any, **fields: Any) -> Any: ...

    def warning(self, event: str, *args: Any, **fields: Any) -> Any: ...

    def error(self, event: str, *args: Any, **fields: Any) -> Any: ...
