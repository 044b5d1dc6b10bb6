"""Search as its users see it: the documents, a query and its page of hits, and the ports every adapter implements.

Pure Python (no driver), so the use cases of chat, account and the index job may all depend on it; the adapters are
``tidings.search.opensearch`` and ``tidings.search.fts5``.

Writes are idempotent and ordered by an external version, the event's time in microseconds-like units (its time in
ms * 1000): an older or replayed event never overwrites a newer document, so a replayed send never brings a
recalled message back. The room below the next millisecond is left for the in-place edits (a sender's rename)
whose store adds one to the version.

Each kind of document (``IndexKind``) lives in numbered versions of its index: one is searched, and writes go to
every version written, which is the searched one and, while a rebuild runs, the version being rebuilt (``IndexAdmin``,
which the ``reindex`` task uses to rebuild an index from the database and hand searches over to it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Generic, Literal, Protocol, TypeVar

from tidings.pkg import errors

T = TypeVar("T")

IndexKind = Literal["messages", "users"]
KINDS: tuple[IndexKind, ...] = ("messages", "users")

# The version of a document written for an event that happened at ``at_ms``.
VERSION_PER_MS = 1000

MAX_LIMIT = 50


def version_at(at_ms: int) -> int:
    """The external version of a document written for an event of ``at_ms`` (see the module's docstring)."""
    return at_ms * VERSION_PER_MS


def rebuilt_tombstone_version(created_at_ms: int) -> int:
    """The version of a recalled message's tombstone rebuilt from storage, which keeps no time of the recall: the
    last one below the next millisecond. Above its send's and any rename of its sender's (a replayed send never brings
    the message back), and below its real recall's, which came a millisecond or more after the send."""
    return version_at(created_at_ms + 1) - 1


class SearchUnavailable(Exception):
    """The index did not answer (down, restarting, timed out, overloaded). Callers report it as their domain's
    SEARCH_UNAVAILABLE (503) or retry it (the index job)."""


class RejectedDocument(Exception):
    """The index refused documents for what they are (a mapping conflict): retrying them cannot help."""


@dataclass(frozen=True)
class MessageDoc:
    """A message as the index keeps it; a recalled one keeps no text."""

    id: int
    conversation_id: int
    sender_id: int
    sender_name: str
    seq: int
    created_at_ms: int
    text: str
    recalled: bool
    version: int


@dataclass(frozen=True)
class Recall:
    """A message recalled at ``version``: its document becomes a tombstone (no text, never returned)."""

    message_id: int
    conversation_id: int
    seq: int
    version: int


@dataclass(frozen=True)
class UserDoc:
    id: int
    username: str
    display_name: str
    version: int


@dataclass(frozen=True)
class MessageHit:
    """A message found, and where in its text the query matched: ``[start, end)`` offsets in code points, sorted
    and not overlapping (never markup for a client to inject)."""

    doc: MessageDoc
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # Where the next page starts (an opaque token), or ``None`` after the last page.
    next_cursor: str | None = None


class Scope(Enum):
    EVERYWHERE = "everywhere"


# A query's ``conversation_ids`` for every conversation (operators only): said out loud, never a default, so no
# forgotten or empty filter can widen a member's search.
EVERYWHERE: Final = Scope.EVERYWHERE


@dataclass(frozen=True)
class MessageQuery:
    """Messages whose text holds every word of ``text`` (case-insensitive; CJK runs inside longer text too), in
    ``conversation_ids`` only (the caller's conversations now: the index keeps no membership; none for an empty
    list), or in every conversation for ``EVERYWHERE``; newest first."""

    text: str
    conversation_ids: Sequence[int] | Literal[Scope.EVERYWHERE]
    cursor: str | None = None
    limit: int = 20
    # Set by the constructor: ``text``'s words, for adapters that need them apart.
    terms: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(dict.fromkeys(self.text.split())))
        if not self.terms:
            errors.raise_for_fields({"query": "must contain a word"})
        if not 1 <= self.limit <= MAX_LIMIT:
            errors.raise_for_fields({"limit": f"1-{MAX_LIMIT}"})


class MessageSearch(Protocol):
    """What a query reads; ``SearchUnavailable`` when the index does not answer."""

    async def search_messages(self, query: MessageQuery) -> Page[MessageHit]:
        """A page of hits, newest first (``created_at_ms``, then ``id``, descending); a bad ``query.cursor`` is
        INVALID_ARGUMENT naming the field ``cursor``."""


class UserSearch(Protocol):
    async def search_users(self, query: str, limit: int) -> list[UserDoc]:
        """Users any of whose username or display name words starts with each word of ``query``, best first."""


class SearchWriter(Protocol):
    """What the index job writes. Each call is idempotent and leaves a newer version of a document as it is;
    ``SearchUnavailable`` when the index does not answer (retry), ``RejectedDocument`` for documents it refused."""

    async def index_messages(self, docs: Sequence[MessageDoc]) -> None: ...

    async def recall_messages(self, recalls: Sequence[Recall]) -> None: ...

    async def index_users(self, docs: Sequence[UserDoc]) -> None: ...

    async def rename_sender(self, sender_id: int, sender_name: str) -> int:
        """Store ``sender_name`` in every message of ``sender_id``; how many documents changed (in every version
        written: twice while a rebuild runs)."""

    async def delete_below(self, conversation_id: int, seq: int) -> int:
        """Remove a conversation's messages below ``seq`` (retention, moderation); how many were removed (in every
        version written)."""


@dataclass(frozen=True)
class IndexVersions:
    """The versions of one kind's index: the one ``searched``, and the ones ``written`` (the searched one and, while
    a rebuild runs, the rebuilt one), ascending."""

    searched: int
    written: tuple[int, ...]


class IndexAdmin(Protocol):
    """Rebuilding an index beside the one searched, then handing searches over to it at once.

    A rebuild takes the ``create_next`` version, which every writer writes too from ``settle_s`` later on, fills it
    (``put_messages``, ``put_users``: idempotent and versioned like the writes), then ``swap``s it in and ``drop``s
    the old one. ``SearchUnavailable`` when the index does not answer.
    """

    @property
    def settle_s(self) -> float:
        """How long after a change of the versions written every writer, in every process, writes to the new ones
        (writers may keep which versions they write for a moment)."""
        ...

    async def versions(self, kind: IndexKind) -> IndexVersions: ...

    async def create_next(self, kind: IndexKind) -> int:
        """A new, empty version numbered after every existing one, written from now on (but not searched); its
        number."""
        ...

    async def put_messages(self, version: int, docs: Sequence[MessageDoc]) -> None:
        """Write ``docs`` into that version alone (an existing one), leaving newer versions of them as they are."""
        ...

    async def put_users(self, version: int, docs: Sequence[UserDoc]) -> None: ...

    async def swap(self, kind: IndexKind, version: int) -> None:
        """Search and write that version alone from now on, both changed at once (a search never finds no index);
        idempotent."""
        ...

    async def drop(self, kind: IndexKind, version: int) -> None:
        """Delete a version (gone already is fine); ``ValueError`` for the one searched."""
        ...


class SearchIndex(MessageSearch, UserSearch, SearchWriter, IndexAdmin, Protocol):
    """An adapter: the ports above, its schema made ready (``ensure``, idempotent) and its connections closed."""

    async def ensure(self) -> None: ...

    async def close(self) -> None: ...


def tombstone(recall: Recall) -> MessageDoc:
    """What a recalled message leaves in the index: no text, never returned, and a version that outranks the send."""
    return MessageDoc(
        id=recall.message_id,
        conversation_id=recall.conversation_id,
        sender_id=0,
        sender_name="",
        seq=recall.seq,
        created_at_ms=0,
        text="",
        recalled=True,
        version=recall.version,
    )


def encode_cursor(created_at_ms: int, message_id: int) -> str:
    """The opaque token of a page's last sort values (url-safe, no padding)."""
    raw = json.dumps([created_at_ms, message_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """The sort values of ``encode_cursor``; INVALID_ARGUMENT naming ``cursor`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != 2
        or not all(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 for value in values)
    ):
        errors.raise_for_fields({"cursor": "not a cursor this search returned"})
        raise AssertionError  # unreachable: raise_for_fields raised
    return values[0], values[1]


def merge_spans(spans: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Spans sorted, with overlapping and touching ones merged."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)
