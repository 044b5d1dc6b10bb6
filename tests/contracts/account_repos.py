"""What every adapter of the account stores must do; run on the in-memory fakes and SQLite (unit) and on MariaDB
(integration).

A test module provides a ``repos`` fixture: the stores of one empty database (``AccountRepos``); ``sql_repos``
builds the SQL ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.pkg.db import ReadReplica
from tidings.service.account.biz.ports import BlockRepo, RefreshToken, RefreshTokenRepo, UsernameTaken, UserRepo
from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.data.repos import SQLBlockRepo, SQLRefreshTokenRepo, SQLUserRepo
from tidings.service.account.user import User


class TokenStore(RefreshTokenRepo, Protocol):
    """The refresh tokens as account keeps them, and as the retention task prunes them."""

    async def prune_expired(self, before_ms: int, limit: int) -> int: ...


@dataclass(frozen=True)
class AccountRepos:
    """Account's stores on one database."""

    users: UserRepo
    tokens: TokenStore
    blocks: BlockRepo


def sql_repos(
    engine: AsyncEngine, statements: AsyncEngine | None = None, replica: ReadReplica | None = None
) -> AccountRepos:
    """The SQL stores on ``engine`` (migrated), with the autocommit engine and the read replica where there are."""
    return AccountRepos(
        SQLUserRepo(engine, statements=statements, replica=replica),
        SQLRefreshTokenRepo(engine, statements=statements),
        SQLBlockRepo(engine, statements=statements),
    )


def account(user_id: int, username: str, display_name: str = "") -> Account:
    user = User(user_id, username, display_name or username, "", "", 1_000)
    return Account(user, "hash", banned=False, tokens_valid_after_ms=0)


class AccountReposContract:
    async def test_users_are_stored_found_and_unique_by_username(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice", "Alice Liddell"))
        found = await users.get_by_username("alice")
        assert found is not None
        assert found.user.display_name == "Alice Liddell"
        with pytest.raises(UsernameTaken):
            await users.create(account(2, "alice"))
        assert await users.get(2) is None

    async def test_accounts_are_read_together_by_id_and_unknown_ids_left_out(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice"))
        await users.create(account(2, "bob"))
        await users.revoke_tokens(2, 5_000, ban=True)
        found = await users.get_accounts([2, 99, 1, 2])
        assert sorted(found) == [1, 2]
        assert (found[1].user.username, found[1].banned) == ("alice", False)
        assert (found[2].banned, found[2].tokens_valid_after_ms) == (True, 5_001)
        assert await users.get_accounts([]) == {}

    async def test_emoji_and_right_to_left_text_survive_a_round_trip(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice"))
        updated = await users.update_profile(1, ProfileChange(display_name="سلام 👋🏽", bio="日本語"), 2_000)
        assert updated is not None
        assert (updated.display_name, updated.bio) == ("سلام 👋🏽", "日本語")

    async def test_search_matches_prefixes_and_treats_wildcards_as_text(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice", "Alice"))
        await users.create(account(2, "alfred", "100% Alfred"))
        await users.create(account(3, "bob", "Bob"))
        assert [u.username for u in await users.search("al", 10)] == ["alfred", "alice"]
        assert [u.username for u in await users.search("%", 10)] == ["alfred"]
        assert [u.username for u in await users.search("_", 10)] == []

    async def test_revoking_tokens_moves_the_validity_instant_and_can_ban(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice"))
        assert await users.revoke_tokens(1, 5_000, ban=False)
        revoked = await users.get(1)
        assert revoked is not None
        assert (revoked.banned, revoked.tokens_valid_after_ms) == (False, 5_001)
        assert await users.revoke_tokens(1, 6_000, ban=True)
        banned = await users.get(1)
        assert banned is not None
        assert banned.banned
        assert not await users.revoke_tokens(99, 6_000, ban=True)

    async def test_accounts_are_read_together_by_username(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice"))
        await users.create(account(2, "bob"))
        found = await users.get_by_usernames(["bob", "nobody", "alice", "bob"])
        assert {name: a.user.id for name, a in found.items()} == {"alice": 1, "bob": 2}
        assert await users.get_by_usernames([]) == {}

    async def test_a_revocation_can_replace_the_password_and_a_ban_can_be_lifted(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice"))
        assert await users.revoke_tokens(1, 5_000, ban=True, password_hash="new hash")
        assert await users.unban(1, 6_000)
        assert await users.unban(1, 6_000)  # idempotent, also within one millisecond
        found = await users.get(1)
        assert found is not None
        assert (found.banned, found.password_hash, found.tokens_valid_after_ms) == (False, "new hash", 5_001)
        assert not await users.unban(99, 6_000)

    async def test_last_activity_is_recorded(self, repos: AccountRepos) -> None:
        users = repos.users
        await users.create(account(1, "alice"))
        assert (await users.get_accounts([1]))[1].last_active_at_ms is None
        await users.mark_active(1, 7_000)
        await users.mark_active(1, 7_000)
        await users.mark_active(99, 7_000)
        found = await users.get_by_username("alice")
        assert found is not None
        assert found.last_active_at_ms == 7_000

    async def test_a_refresh_token_is_spent_exactly_once_under_a_race(self, repos: AccountRepos) -> None:
        tokens = repos.tokens
        await tokens.add(RefreshToken(10, 1, 10, "h", 9_999_999))
        results = await asyncio.gather(*(tokens.spend(10, 1_000) for _ in range(8)))
        assert sorted(results) == [False] * 7 + [True]

    async def test_revoking_a_family_hides_its_tokens(self, repos: AccountRepos) -> None:
        tokens = repos.tokens
        await tokens.add(RefreshToken(10, 1, 10, "h", 9_999_999))
        await tokens.add(RefreshToken(11, 1, 10, "h", 9_999_999))
        await tokens.add(RefreshToken(12, 1, 12, "h", 9_999_999))
        await tokens.revoke_family(10, 1_000)
        assert await tokens.get(10) is None
        assert await tokens.get(11) is None
        assert await tokens.get(12) is not None

    async def test_pruning_deletes_only_tokens_expired_before_the_instant_in_bounded_batches(
        self, repos: AccountRepos
    ) -> None:
        tokens = repos.tokens
        for token_id in range(1, 6):
            await tokens.add(RefreshToken(token_id, 1, 1, "h", token_id * 1_000))
        assert await tokens.prune_expired(4_000, limit=2) == 2
        assert await tokens.prune_expired(4_000, limit=2) == 1
        assert await tokens.prune_expired(4_000, limit=2) == 0
        assert [await tokens.get(token_id) is not None for token_id in range(1, 6)] == [False] * 3 + [True] * 2

    async def test_blocks_are_idempotent_and_seen_both_ways(self, repos: AccountRepos) -> None:
        blocks = repos.blocks
        await blocks.block(1, 2, 1_000)
        await blocks.block(1, 2, 1_001)
        assert await blocks.blocked_pairs([(2, 1)]) == [True]
        await blocks.unblock(1, 2)
        assert await blocks.blocked_pairs([(1, 2), (3, 4)]) == [False, False]
