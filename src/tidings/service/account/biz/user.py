"""Users as the domain sees them, and the rules their fields follow."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tidings.service.account.user import User

USERNAME = re.compile(r"[a-z][a-z0-9_]{2,31}")
PASSWORD_LENGTH = range(8, 129)
DISPLAY_NAME_LENGTH = range(1, 65)
BIO_MAX = 280
AVATAR_URL_MAX = 512


@dataclass(frozen=True)
class Account:
    """A user with what only the account service may see: the password hash and the ban state."""

    user: User
    password_hash: str
    banned: bool
    # Access tokens issued before this instant are refused (a ban or "log out everywhere").
    tokens_valid_after_ms: int
    # When the user last signed in or refreshed a token; None if never since this was recorded.
    last_active_at_ms: int | None = None


@dataclass(frozen=True)
class ProfileChange:
    """Fields a user may change about themselves; ``None`` leaves a field as it is."""

    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None


def normalize_username(raw: str) -> str:
    """Usernames compare without case: ``Alice`` and ``alice`` are one user."""
    return raw.lower()


def username_problem(username: str) -> str | None:
    if USERNAME.fullmatch(username) is None:
        return "3-32 characters: a letter, then letters, digits or underscores"
    return None


def password_problem(password: str) -> str | None:
    if len(password) not in PASSWORD_LENGTH:
        return f"{PASSWORD_LENGTH.start}-{PASSWORD_LENGTH.stop - 1} characters"
    return None


def password_weakness(password: str) -> str | None:
    """Why a password of a valid length is still too weak to accept: mostly spaces, or one character repeated."""
    meaningful = "".join(password.split())
    if len(meaningful) < PASSWORD_LENGTH.start:
        return f"needs at least {PASSWORD_LENGTH.start} characters other than spaces"
    if len(set(meaningful)) == 1:
        return "must not be one character repeated"
    return None


def profile_problems(change: ProfileChange) -> dict[str, str]:
    """Each field that breaks a rule, with the rule."""
    problems = {}
    if change.display_name is not None and (
        len(change.display_name) not in DISPLAY_NAME_LENGTH or not change.display_name.strip()
    ):
        problems["display_name"] = "1-64 characters, not only spaces"
    if change.bio is not None and len(change.bio) > BIO_MAX:
        problems["bio"] = f"at most {BIO_MAX} characters"
    if (
        change.avatar_url is not None
        and change.avatar_url
        and (len(change.avatar_url) > AVATAR_URL_MAX or not change.avatar_url.startswith(("https://", "http://")))
    ):
        problems["avatar_url"] = f"an http(s) URL of at most {AVATAR_URL_MAX} characters, or empty"
    return problems
