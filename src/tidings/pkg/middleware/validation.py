"""Request validation by the rules in the contracts (protovalidate reads the ``buf.validate`` annotations).

A violation becomes 400 INVALID_ARGUMENT naming the field by its dotted path (``member_ids.3``). A custom rule
whose id is a reason of the request's service (``MESSAGE_TOO_LONG`` in tidings.chat.v1) raises that reason
instead, so a contract can name the specific failure clients match on.
"""

from __future__ import annotations

import protovalidate
from google.protobuf.message import Message

from tidings.api.common.v1 import errors as common_errors
from tidings.api.reasons import BY_DOMAIN_AND_NAME
from tidings.pkg import errors
from tidings.pkg.errors import FieldViolation


def check(request: Message) -> None:
    """Raise the ``TidingsError`` for every rule ``request`` breaks; return if it breaks none."""
    violations = [violation.proto for violation in protovalidate.collect_violations(request)]
    if not violations:
        return
    domain = request.DESCRIPTOR.file.package
    named = (BY_DOMAIN_AND_NAME.get((domain, violation.rule_id)) for violation in violations)
    reason = next((reason for reason in named if reason is not None), common_errors.INVALID_ARGUMENT)
    raise errors.invalid_fields(
        [FieldViolation(_path(violation.field), violation.message) for violation in violations], reason
    )


def _path(field: protovalidate.FieldPathPb | None) -> str:
    """``member_ids.3``, ``deliveries.0.event``, ``metadata.some_key``; empty for a rule on the whole message."""
    parts: list[str] = []
    for element in field.elements if field is not None else ():
        parts.append(element.field_name)
        if element.subscript is not None:
            key = element.subscript.value
            parts.append(str(key).lower() if isinstance(key, bool) else str(key))
    return ".".join(parts)
