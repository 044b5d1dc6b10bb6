"""The embedded mode's search index: SQLite FTS5 in a file of its own (``search.url``), through the same
aiosqlite/SQLAlchemy stack as the embedded database.

Message text is indexed with the ``trigram`` tokenizer, so any run of three or more characters matches wherever it
stands, Chinese and Japanese inside longer text included (they have no spaces to split words at). A shorter word
(the two-character 你好) has no trigram: it is found by a scan of the matching rows' text instead, so every word of
a query must appear, whatever its length. Names are indexed by word (``unicode61``) and matched by prefix.

Documents carry the external version of ``tidings.search.model``: an upsert replaces a row only with a higher one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    Select,
    Table,
    Text,
    column,
    delete,
    event,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import TableClause

from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf
from tidings.search.model import (
    MessageDoc,
    MessageHit,
    MessageQuery,
    Page,
    Recall,
    RejectedDocument,
    SearchUnavailable,
    UserDoc,
    decode_cursor,
    encode_cursor,
    merge_spans,
    tombstone,
)

# Words shorter than this have no trigram to look up.
TRIGRAM = 3
_FOLD = "tidings_fold"


def sqlite_url(url: str) -> str:
    """``search.url`` as a SQLAlchemy URL: a path becomes the file's aiosqlite URL."""
    return url if url.startswith("sqlite") else f"sqlite+aiosqlite:///{url}"


class FTS5Index:
    """``SearchIndex`` on SQLite FTS5; ``namespace`` prefixes every table (tests and fleets sharing a file)."""

    def __init__(self, url: str, *, namespace: str = "", timeout_s: float = 5.0) -> None:
        self._engine = db.create_engine(DatabaseConf(url=sqlite_url(url), connect_timeout_s=timeout_s))
        event.listen(self._engine.sync_engine, "connect", _register_fold)
        self._timeout_s = timeout_s
        self._namespace = namespace
        self._metadata = MetaData()
        self._messages = Table(
            f"{namespace}messages",
            self._metadata,
            Column("id", BigInteger, primary_key=True, autoincrement=False),
            Column("conversation_id", BigInteger, nullable=False),
            Column("sender_id", BigInteger, nullable=False),
            Column("sender_name", Text, nullable=False),
            Column("seq", BigInteger, nullable=False),
            Column("created_at_ms", BigInteger, nullable=False),
            Column("text", Text, nullable=False),
            Column("recalled", Boolean, nullable=False),
            Column("version", BigInteger, nullable=False),
            Index(f"{namespace}messages_by_time", "conversation_id", "created_at_ms", "id"),
            Index(f"{namespace}messages_by_sender", "sender_id"),
        )
        self._users = Table(
            f"{namespace}users",
            self._metadata,
            Column("id", BigInteger, primary_key=True, autoincrement=False),
            Column("username", Text, nullable=False),
            Column("display_name", Text, nullable=False),
            Column("version", BigInteger, nullable=False),
        )
        # The FTS5 tables, named the way SQLite's MATCH wants them: the table itself on the left.
        self._message_text = table(f"{namespace}messages_text", column("rowid"))
        self._user_names = table(f"{namespace}users_names", column("rowid"), column("rank"))

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def ensure(self) -> None:
        """Create the tables, their full-text indexes and the triggers that keep them in step (idempotent)."""
        ns = self._namespace
        messages, users = ns + "messages", ns + "users"
        async with self._write() as conn:
            await conn.run_sync(self._metadata.create_all)
            for statement in [
                _fts_table(ns + "messages_text", messages, ["text"], "trigram"),
                *_sync_triggers(messages, ns + "messages_text", ["text"]),
                _fts_table(ns + "users_names", users, ["username", "display_name"], "unicode61"),
                *_sync_triggers(users, ns + "users_names", ["username", "display_name"]),
            ]:
                await conn.execute(text(statement))

    async def close(self) -> None:
        await self._engine.dispose()

    # -- writes ---------------------------------------------------------------------------------------------------

    async def index_messages(self, docs: Sequence[MessageDoc]) -> None:
        rows = [
            {
                "id": d.id,
                "conversation_id": d.conversation_id,
                "sender_id": d.sender_id,
                "sender_name": d.sender_name,
                "seq": d.seq,
                "created_at_ms": d.created_at_ms,
                "text": "" if d.recalled else d.text,
                "recalled": d.recalled,
                "version": d.version,
            }
            for d in docs
        ]
        await self._upsert(self._messages, rows)

    async def recall_messages(self, recalls: Sequence[Recall]) -> None:
        await self.index_messages([tombstone(recall) for recall in recalls])

    async def index_users(self, docs: Sequence[UserDoc]) -> None:
        rows = [
            {"id": d.id, "username": d.username, "display_name": d.display_name, "version": d.version} for d in docs
        ]
        await self._upsert(self._users, rows)

    async def rename_sender(self, sender_id: int, sender_name: str) -> int:
        m = self._messages.c
        # One more on the version, as OpenSearch's update_by_query does: still below the next event's.
        statement = (
            update(self._messages)
            .where(m.sender_id == sender_id, m.sender_name != sender_name, m.recalled.is_(False))
            .values(sender_name=sender_name, version=m.version + 1)
        )
        async with self._write() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount)

    async def delete_below(self, conversation_id: int, seq: int) -> int:
        m = self._messages.c
        statement = delete(self._messages).where(m.conversation_id == conversation_id, m.seq < seq)
        async with self._write() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount)

    async def _upsert(self, target: Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, or replace a stored row only by one of a higher version."""
        if not rows:
            return
        statement = sqlite_insert(target)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={name: statement.excluded[name] for name in rows[0] if name != "id"},
            where=statement.excluded.version > target.c.version,
        )
        async with self._write() as conn:
            await conn.execute(statement, rows)

    # -- reads ----------------------------------------------------------------------------------------------------

    async def search_messages(self, query: MessageQuery) -> Page[MessageHit]:
        after = decode_cursor(query.cursor) if query.cursor is not None else None
        if not query.conversation_ids:
            return Page([])
        m = self._messages.c
        statement = select(self._messages).where(
            m.conversation_id.in_(list(query.conversation_ids)), m.recalled.is_(False)
        )
        long_terms = [term for term in query.terms if len(term) >= TRIGRAM]
        if long_terms:
            match = " AND ".join(_phrase(term) for term in long_terms)
            statement = statement.where(m.id.in_(self._matching(self._message_text, match)))
        for term in query.terms:
            if len(term) < TRIGRAM:
                statement = statement.where(func.instr(getattr(func, _FOLD)(m.text), term.casefold()) > 0)
        if after is not None:
            statement = statement.where(tuple_(m.created_at_ms, m.id) < tuple_(literal(after[0]), literal(after[1])))
        statement = statement.order_by(m.created_at_ms.desc(), m.id.desc()).limit(query.limit + 1)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        docs = [MessageDoc(**row) for row in rows]
        page, more = docs[: query.limit], len(docs) > query.limit
        hits = [MessageHit(doc, highlight(doc.text, query.terms)) for doc in page]
        cursor = encode_cursor(page[-1].created_at_ms, page[-1].id) if more else None
        return Page(hits, cursor)

    async def search_users(self, query: str, limit: int) -> list[UserDoc]:
        terms = query.split()
        if not terms:
            return []
        names = self._user_names.c
        match = " AND ".join(_phrase(term) + "*" for term in terms)
        statement = (
            select(self._users)
            .join(self._user_names, names.rowid == self._users.c.id)
            .where(literal_column(_quoted(self._user_names.name)).op("MATCH")(match))
            .order_by(names.rank, self._users.c.id)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [UserDoc(**row) for row in rows]

    @staticmethod
    def _matching(fts: TableClause, match: str) -> Select[Any]:
        """The rowids an FTS5 table matches for ``match`` (an FTS5 query of quoted words)."""
        return select(fts.c.rowid).where(literal_column(_quoted(fts.name)).op("MATCH")(match))

    # -- connections ----------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.begin() as conn:
                yield conn
        except db.UNREACHABLE as exc:
            raise SearchUnavailable(f"search index: {exc!r}") from exc
        except TimeoutError as exc:
            raise SearchUnavailable("search index: timed out") from exc
        except IntegrityError as exc:
            raise RejectedDocument(str(exc)) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as conn:
                yield conn
        except db.UNREACHABLE as exc:
            raise SearchUnavailable(f"search index: {exc!r}") from exc
        except TimeoutError as exc:
            raise SearchUnavailable("search index: timed out") from exc


def highlight(body: str, terms: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Where each of ``terms`` occurs in ``body`` (case-insensitive), as merged ``[start, end)`` code point spans."""
    spans = [match.span() for term in terms for match in re.finditer(re.escape(term), body, re.IGNORECASE | re.UNICODE)]
    return merge_spans(spans)


def _fts_table(name: str, content: str, columns: list[str], tokenizer: str) -> str:
    """An external-content FTS5 index of ``content``'s ``columns`` (the text is stored once, in the table)."""
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {_quoted(name)} USING fts5({', '.join(columns)},"
        f" content={_literal(content)}, content_rowid='id', tokenize={_literal(tokenizer)})"
    )


def _sync_triggers(content: str, name: str, columns: list[str]) -> list[str]:
    """The triggers that keep an external-content FTS5 index in step with its table (SQLite's documented recipe).

    The names are the namespace's (``SearchConf.namespace``: letters, digits, ``._-``), quoted: nothing a user
    sends ever reaches this text, hence the ``noqa``.
    """
    table, index, cols = _quoted(content), _quoted(name), ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    remove = f"INSERT INTO {index} ({index}, rowid, {cols}) VALUES ('delete', old.id, {old});"  # noqa: S608
    add = f"INSERT INTO {index} (rowid, {cols}) VALUES (new.id, {new});"  # noqa: S608
    return [
        f"CREATE TRIGGER IF NOT EXISTS {_quoted(content + '_ai')} AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER IF NOT EXISTS {_quoted(content + '_ad')} AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER IF NOT EXISTS {_quoted(content + '_au')} AFTER UPDATE OF {cols} ON {table}"
        f" BEGIN {remove} {add} END",
    ]


def _phrase(term: str) -> str:
    """A word as an FTS5 string: quoted, so nothing in it is query syntax (AND, NEAR, ``*``, column filters)."""
    return '"' + term.replace('"', '""') + '"'


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _register_fold(dbapi_connection: Any, _: Any) -> None:
    # Case-insensitive containment for the short words the trigram index cannot look up, the way the highlights
    # find them; deterministic, so SQLite may use it freely.
    dbapi_connection.create_function(
        _FOLD, 1, lambda value: value.casefold() if value is not None else None, deterministic=True
    )
