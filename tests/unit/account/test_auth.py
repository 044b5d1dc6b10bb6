from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.unit.account.fakes import (
    FakeBlocks,
    FakeClock,
    FakeCodec,
    FakeIds,
    FakeRefreshTokens,
    FakeUsers,
    PlainHasher,
)
from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.service.account.biz.auth import Auth, AuthPolicy
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.tokens import AccessClaims


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.users = FakeUsers()
        self.refresh = FakeRefreshTokens()
        self.blocks = FakeBlocks()
        self.auth = Auth(
            self.users, self.refresh, PlainHasher(), FakeCodec(), FakeIds(), self.clock, AuthPolicy(access_ttl_s=900)
        )
        self.profiles = Profiles(self.users, self.blocks, self.clock)


@pytest.fixture
def world() -> World:
    return World()


async def test_register_then_login_with_any_case_of_the_username(world: World) -> None:
    session = await world.auth.register("Alice_1", "correct horse", None)
    assert session.user.username == "alice_1"
    assert session.user.display_name == "alice_1"
    again = await world.auth.login("ALICE_1", "correct horse")
    assert again.user.id == session.user.id
    assert (await world.auth.verify(again.access_token)).user_id == session.user.id


async def test_a_taken_username_is_username_taken(world: World) -> None:
    await world.auth.register("alice", "correct horse", None)
    with pytest.raises(errors.TidingsError) as raised:
        await world.auth.register("ALICE", "another pass", None)
    assert account_errors.is_username_taken(raised.value)
    assert raised.value.code == 409


@pytest.mark.parametrize(
    ("username", "password", "fields"),
    [
        ("al", "correct horse", "username"),
        ("1alice", "correct horse", "username"),
        ("alice smith", "correct horse", "username"),
        ("alice", "short", "password"),
        ("a", "x", "username,password"),
    ],
)
async def test_bad_sign_up_input_names_every_bad_field(world: World, username: str, password: str, fields: str) -> None:
    with pytest.raises(errors.TidingsError) as raised:
        await world.auth.register(username, password, None)
    assert raised.value.code == 400
    assert raised.value.reason == "INVALID_ARGUMENT"
    assert raised.value.metadata["field"] == fields


async def test_wrong_password_and_unknown_user_look_the_same(world: World) -> None:
    await world.auth.register("alice", "correct horse", None)
    with pytest.raises(errors.TidingsError) as wrong:
        await world.auth.login("alice", "wrong horse")
    with pytest.raises(errors.TidingsError) as unknown:
        await world.auth.login("nobody", "wrong horse")
    assert (wrong.value.code, wrong.value.reason, wrong.value.message) == (
        unknown.value.code,
        unknown.value.reason,
        unknown.value.message,
    )
    assert account_errors.is_invalid_credentials(wrong.value)


async def test_refresh_rotates_and_a_reused_token_ends_the_whole_login(world: World) -> None:
    first = await world.auth.register("alice", "correct horse", None)
    second = await world.auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(errors.TidingsError) as reused:
        await world.auth.refresh(first.refresh_token)
    assert account_errors.is_token_revoked(reused.value)
    # The stolen copy was used: the legitimate successor is revoked too.
    with pytest.raises(errors.TidingsError):
        await world.auth.refresh(second.refresh_token)


@pytest.mark.parametrize(
    "token",
    # A 19-digit id past 63 bits, and digits that are no ASCII digits: forged, never a 500.
    ["", "garbage", "12.x", "99999999999999999999999.abc", "9999999999999999999.abc", "\u00b2\u00b3.x", "1000.wrong"],
)
async def test_malformed_or_forged_refresh_tokens_are_refused(world: World, token: str) -> None:
    await world.auth.register("alice", "correct horse", None)
    with pytest.raises(errors.TidingsError) as raised:
        await world.auth.refresh(token)
    assert raised.value.code == 401


async def test_an_expired_access_token_is_token_expired(world: World) -> None:
    session = await world.auth.register("alice", "correct horse", None)
    world.clock.now += 901_000
    with pytest.raises(errors.TidingsError) as raised:
        await world.auth.verify(session.access_token)
    assert account_errors.is_token_expired(raised.value)


async def test_a_ban_revokes_access_and_refresh_tokens_at_once(world: World) -> None:
    session = await world.auth.register("mallory", "correct horse", None)
    world.clock.now += 10
    await world.auth.revoke_all(session.user.id, ban=True)
    with pytest.raises(errors.TidingsError) as access:
        await world.auth.verify(session.access_token)
    assert account_errors.is_token_revoked(access.value)
    with pytest.raises(errors.TidingsError):
        await world.auth.refresh(session.refresh_token)
    with pytest.raises(errors.TidingsError) as login:
        await world.auth.login("mallory", "correct horse")
    assert account_errors.is_user_banned(login.value)


async def test_tokens_verified_together_are_each_answered_as_alone_with_one_read(world: World) -> None:
    alice = await world.auth.register("alice", "correct horse", None)
    world.clock.now += 10
    mallory = await world.auth.register("mallory", "correct horse", None)
    world.clock.now += 10
    await world.auth.revoke_all(mallory.user.id, ban=True)
    expired = f"{alice.user.id}:0:1"
    reads: list[list[int]] = []
    get_accounts = world.users.get_accounts

    async def counted(user_ids: Sequence[int]) -> dict[int, Account]:
        reads.append(list(user_ids))
        return await get_accounts(user_ids)

    world.users.get_accounts = counted  # type: ignore[method-assign]
    verdicts = await world.auth.verify_many(
        [mallory.access_token, "forged", alice.access_token, expired, f"{424242}:0:{10**15}"]
    )
    assert len(reads) == 1
    banned, forged, valid, late, unknown = verdicts
    assert isinstance(valid, AccessClaims)
    assert valid.user_id == alice.user.id
    assert isinstance(banned, errors.TidingsError)
    assert account_errors.is_token_revoked(banned)
    assert isinstance(forged, errors.TidingsError)
    assert account_errors.is_token_invalid(forged)
    assert isinstance(late, errors.TidingsError)
    assert account_errors.is_token_expired(late)
    # A genuine token of a user who no longer exists counts as revoked.
    assert isinstance(unknown, errors.TidingsError)
    assert account_errors.is_token_revoked(unknown)


async def test_profiles_update_search_and_batch_get(world: World) -> None:
    alice = (await world.auth.register("alice", "correct horse", "Alice A.")).user
    bob = (await world.auth.register("bob", "correct horse", None)).user
    updated = await world.profiles.update(alice.id, ProfileChange(bio="hi", avatar_url="https://x.test/a.png"))
    assert (updated.display_name, updated.bio) == ("Alice A.", "hi")
    assert [u.username for u in await world.profiles.search("ALI", 10)] == ["alice"]
    assert [u.id for u in await world.profiles.get_many([bob.id, 424242, alice.id, bob.id])] == [bob.id, alice.id]
    with pytest.raises(errors.TidingsError) as raised:
        await world.profiles.update(alice.id, ProfileChange(display_name=" ", avatar_url="javascript:alert(1)"))
    assert raised.value.metadata["field"] == "display_name,avatar_url"


@pytest.mark.parametrize("query", ["\x00", "al\x00", "a\nb", "a", "  a  ", "", "x" * 65])
async def test_a_user_search_without_a_meaningful_query_is_refused_naming_it(world: World, query: str) -> None:
    await world.auth.register("alice", "correct horse", None)
    with pytest.raises(errors.TidingsError) as refused:
        await world.profiles.search(query, 10)
    assert common_errors.is_invalid_argument(refused.value)
    assert refused.value.metadata["field"] == "query"


async def test_a_user_search_of_two_characters_after_trimming_is_served(world: World) -> None:
    await world.auth.register("alice", "correct horse", None)
    assert [u.username for u in await world.profiles.search(" al ", 10)] == ["alice"]


async def test_blocks_apply_both_ways_and_not_to_oneself(world: World) -> None:
    alice = (await world.auth.register("alice", "correct horse", None)).user
    bob = (await world.auth.register("bob", "correct horse", None)).user
    await world.profiles.block(alice.id, bob.id)
    assert await world.profiles.blocked_either_way(bob.id, alice.id)
    await world.profiles.unblock(alice.id, bob.id)
    assert not await world.profiles.blocked_either_way(alice.id, bob.id)
    with pytest.raises(errors.TidingsError) as raised:
        await world.profiles.block(alice.id, alice.id)
    assert account_errors.is_cannot_block_self(raised.value)


async def test_log_out_everywhere_ends_sessions_but_allows_signing_in_again(world: World) -> None:
    session = await world.auth.register("alice", "correct horse", None)
    world.clock.now += 10
    await world.auth.revoke_all(session.user.id)
    with pytest.raises(errors.TidingsError) as access:
        await world.auth.verify(session.access_token)
    assert account_errors.is_token_revoked(access.value)
    world.clock.now += 10
    fresh = await world.auth.login("alice", "correct horse")
    assert (await world.auth.verify(fresh.access_token)).user_id == session.user.id


@pytest.mark.parametrize("password", [" " * 8, " " * 40, "a b c d e f g", "aaaaaaaaaa", "\t\n      \u3000 x"])
async def test_a_password_of_spaces_or_one_repeated_character_is_refused_as_weak(world: World, password: str) -> None:
    with pytest.raises(errors.TidingsError) as refused:
        await world.auth.register("alice", password, None)
    assert account_errors.is_weak_password(refused.value)
    assert (refused.value.code, refused.value.metadata["field"]) == (400, "password")


async def test_a_password_with_spaces_but_eight_other_characters_is_accepted(world: World) -> None:
    assert (await world.auth.register("alice", "correct horse", None)).user.username == "alice"
