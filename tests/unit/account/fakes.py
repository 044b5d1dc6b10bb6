"""In-memory fakes of the account ports, for fast use-case tests; the stores keep the contract the SQL ones keep
(test_repos.py runs it on both)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from tidings.service.account.biz.ports import RefreshToken, RevokeCause, UsernameTaken
from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.tokens import AccessClaims, TokenExpired, TokenInvalid
from tidings.service.account.user import User


class FakeClock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


class FakeIds:
    def __init__(self) -> None:
        self._next = itertools.count(1000)

    def next_id(self) -> int:
        return next(self._next)


class FakeUsers:
    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}

    async def create(self, account: Account) -> None:
        if any(a.user.username == account.user.username for a in self.accounts.values()):
            raise UsernameTaken(account.user.username)
        self.accounts[account.user.id] = account

    async def get(self, user_id: int) -> Account | None:
        return self.accounts.get(user_id)

    async def get_by_username(self, username: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.user.username == username), None)

    async def get_many(self, user_ids: list[int]) -> list[User]:
        return [self.accounts[i].user for i in user_ids if i in self.accounts]

    async def get_accounts(self, user_ids: Sequence[int]) -> dict[int, Account]:
        return {i: self.accounts[i] for i in user_ids if i in self.accounts}

    async def update_profile(self, user_id: int, change: ProfileChange, now_ms: int) -> User | None:
        account = self.accounts.get(user_id)
        if account is None:
            return None
        fields = {k: v for k, v in vars(change).items() if v is not None}
        account = replace(account, user=replace(account.user, **fields))
        self.accounts[user_id] = account
        return account.user

    async def search(self, query: str, limit: int) -> list[User]:
        hits = [
            a.user
            for a in self.accounts.values()
            if not a.banned and (a.user.username.startswith(query) or query in a.user.display_name.lower())
        ]
        return sorted(hits, key=lambda u: u.username)[:limit]

    async def get_by_usernames(self, usernames: Sequence[str]) -> dict[str, Account]:
        return {a.user.username: a for a in self.accounts.values() if a.user.username in usernames}

    async def revoke_tokens(self, user_id: int, now_ms: int, *, ban: bool, password_hash: str | None = None) -> bool:
        account = self.accounts.get(user_id)
        if account is None:
            return False
        self.accounts[user_id] = replace(
            account,
            banned=account.banned or ban,
            tokens_valid_after_ms=now_ms + 1,
            password_hash=password_hash or account.password_hash,
        )
        return True

    async def unban(self, user_id: int, now_ms: int) -> bool:
        account = self.accounts.get(user_id)
        if account is None:
            return False
        self.accounts[user_id] = replace(account, banned=False)
        return True

    async def mark_active(self, user_id: int, now_ms: int) -> None:
        if user_id in self.accounts:
            self.accounts[user_id] = replace(self.accounts[user_id], last_active_at_ms=now_ms)


class FakeRefreshTokens:
    def __init__(self) -> None:
        self.tokens: dict[int, RefreshToken] = {}
        self.spent: set[int] = set()
        self.revoked: set[int] = set()

    async def add(self, token: RefreshToken) -> None:
        self.tokens[token.id] = token

    async def get(self, token_id: int) -> RefreshToken | None:
        if not 0 <= token_id < 2**63:  # as the database's BIGINT (SQLite cannot even bind it)
            raise OverflowError(f"{token_id} is no 64-bit signed id")
        return None if token_id in self.revoked else self.tokens.get(token_id)

    async def spend(self, token_id: int, now_ms: int) -> bool:
        if token_id in self.spent or token_id in self.revoked:
            return False
        self.spent.add(token_id)
        return True

    async def revoke_family(self, family_id: int, now_ms: int) -> None:
        self.revoked |= {t.id for t in self.tokens.values() if t.family_id == family_id}

    async def revoke_user(self, user_id: int, now_ms: int) -> None:
        self.revoked |= {t.id for t in self.tokens.values() if t.user_id == user_id}

    async def prune_expired(self, before_ms: int, limit: int) -> int:
        doomed = [t.id for t in self.tokens.values() if t.expires_at_ms < before_ms][:limit]
        for token_id in doomed:
            del self.tokens[token_id]
        return len(doomed)


class RecordedEvents:
    """What the use cases published, in order."""

    def __init__(self) -> None:
        self.updated: list[tuple[User, int]] = []
        self.revoked: list[tuple[int, RevokeCause, int]] = []

    async def user_updated(self, user: User, at_ms: int) -> None:
        self.updated.append((user, at_ms))

    async def tokens_revoked(self, user_id: int, cause: RevokeCause, revoked_before_ms: int) -> None:
        self.revoked.append((user_id, cause, revoked_before_ms))


class FakeBlocks:
    def __init__(self) -> None:
        self.pairs: set[tuple[int, int]] = set()

    async def block(self, blocker_id: int, blocked_id: int, now_ms: int) -> None:
        self.pairs.add((blocker_id, blocked_id))

    async def unblock(self, blocker_id: int, blocked_id: int) -> None:
        self.pairs.discard((blocker_id, blocked_id))

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        return [(a, b) in self.pairs or (b, a) in self.pairs for a, b in pairs]


class PlainHasher:
    """Reversible on purpose: the use cases only need hash/verify to agree."""

    async def hash(self, password: str) -> str:
        return "plain:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "plain:" + password


class FakeCodec:
    def encode(self, claims: AccessClaims) -> str:
        return f"{claims.user_id}:{claims.issued_at_ms}:{claims.expires_at_ms}"

    def decode(self, token: str, now_ms: int) -> AccessClaims:
        try:
            user_id, issued, expires = (int(part) for part in token.split(":"))
        except ValueError:
            raise TokenInvalid(token) from None
        if expires <= now_ms:
            raise TokenExpired()
        return AccessClaims(user_id, issued, expires)
