"""Generated from api/ by scripts/protogen.py. Do not edit."""

from __future__ import annotations

from tidings.api.account.v1 import errors as account
from tidings.api.admin.v1 import errors as admin
from tidings.api.chat.v1 import errors as chat
from tidings.api.common.v1 import errors as common
from tidings.pkg.errors.base import Reason

# Every reason a contract declares, by its proto package and name: how an error from the wire finds its own.
BY_DOMAIN_AND_NAME: dict[tuple[str, str], Reason] = {
    (reason.domain, reason.name): reason for module in (account, admin, chat, common) for reason in module.REASONS
}
