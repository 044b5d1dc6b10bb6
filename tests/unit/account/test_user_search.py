"""Finding people through the search index: every registration and profile change is announced for the index, the
index ranks, and account shows only users that exist and are not banned; an index that does not answer is
SEARCH_UNAVAILABLE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.account.fakes import (
    FakeBlocks,
    FakeCodec,
    FakeIds,
    FakeRefreshTokens,
    FakeUsers,
    PlainHasher,
)
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg.clock import FakeClock
from tidings.pkg.errors import TidingsError
from tidings.search.fts5 import FTS5Index
from tidings.search.model import SearchUnavailable, UserDoc, version_at
from tidings.service.account.biz.auth import Auth, AuthPolicy
from tidings.service.account.biz.ports import RevokeCause
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.biz.user import ProfileChange
from tidings.service.account.user import User


class IndexingEvents:
    """The announcements, kept, and handed straight to the index as the index job would."""

    def __init__(self, index: FTS5Index) -> None:
        self.index = index
        self.announced: list[tuple[User, int]] = []

    async def user_updated(self, user: User, at_ms: int) -> None:
        self.announced.append((user, at_ms))
        await self.index.index_users([UserDoc(user.id, user.username, user.display_name, version_at(at_ms))])

    async def tokens_revoked(self, user_id: int, cause: RevokeCause, revoked_before_ms: int) -> None:
        pass  # the index does not follow revocations


class World:
    def __init__(self, index: FTS5Index) -> None:
        self.clock = FakeClock()
        self.users = FakeUsers()
        self.events = IndexingEvents(index)
        self.auth = Auth(
            self.users,
            FakeRefreshTokens(),
            PlainHasher(),
            FakeCodec(),
            FakeIds(),
            self.clock,
            AuthPolicy(access_ttl_s=900),
            self.events,
        )
        self.profiles = Profiles(self.users, FakeBlocks(), self.clock, events=self.events, search=index)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    index = FTS5Index(str(tmp_path / "search.db"))
    await index.ensure()
    yield World(index)
    await index.close()


async def test_registrations_and_profile_changes_are_announced(world: World) -> None:
    session = await world.auth.register("alice", "correct horse", "Alice")
    registered_at = world.clock.now_ms()
    world.clock.advance(ms=1_000)
    await world.profiles.update(session.user.id, ProfileChange(display_name="Alice Liddell"))
    assert [(user.display_name, at_ms) for user, at_ms in world.events.announced] == [
        ("Alice", registered_at),
        ("Alice Liddell", registered_at + 1_000),
    ]


async def test_people_are_found_by_name_prefix_in_any_language(world: World) -> None:
    await world.auth.register("alice", "correct horse", "Alice Liddell")
    await world.auth.register("zhang", "correct horse", "张三丰")
    await world.auth.register("bob", "correct horse", "Robert")
    assert [user.username for user in await world.profiles.search("lidd", 10)] == ["alice"]
    assert [user.username for user in await world.profiles.search("张三", 10)] == ["zhang"]
    assert [user.display_name for user in await world.profiles.search("ZHA", 10)] == ["张三丰"]


async def test_a_banned_user_is_not_listed(world: World) -> None:
    session = await world.auth.register("mallory", "correct horse", "Mallory")
    await world.users.revoke_tokens(session.user.id, world.clock.now_ms(), ban=True)
    assert await world.profiles.search("mallory", 10) == []


class BehindIndex:
    """An index that has not seen the latest sign-ups yet: it knows only the users it was given."""

    def __init__(self, known: list[User]) -> None:
        self.known = known

    async def search_users(self, query: str, limit: int) -> list[UserDoc]:
        return [
            UserDoc(u.id, u.username, u.display_name, 1) for u in self.known if u.username.startswith(query.lower())
        ][:limit]


async def test_a_whole_username_finds_its_user_before_the_index_has_it(world: World) -> None:
    older = (await world.auth.register("alice_old", "correct horse", "Alice")).user
    newest = (await world.auth.register("alice", "correct horse", "Alice Liddell")).user
    profiles = Profiles(world.users, FakeBlocks(), world.clock, search=BehindIndex([older]))
    # The whole username comes first, then the index's ranking, within the limit; a prefix is the index's alone.
    assert [user.id for user in await profiles.search(" Alice ", 10)] == [newest.id, older.id]
    assert [user.id for user in await profiles.search("alice", 1)] == [newest.id]
    assert [user.id for user in await profiles.search("alic", 10)] == [older.id]
    await world.users.revoke_tokens(newest.id, world.clock.now_ms(), ban=True)
    assert [user.id for user in await profiles.search("alice", 10)] == [older.id]


class DownIndex:
    async def search_users(self, query: str, limit: int) -> list[UserDoc]:
        raise SearchUnavailable("connection refused")


async def test_an_index_that_does_not_answer_is_search_unavailable(world: World) -> None:
    profiles = Profiles(world.users, FakeBlocks(), world.clock, search=DownIndex())
    with pytest.raises(TidingsError) as raised:
        await profiles.search("alice", 10)
    assert common_errors.is_search_unavailable(raised.value)
    assert raised.value.code == 503
