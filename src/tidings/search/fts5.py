"""The embedded mode's search index: SQLite FTS5 in a file of its own (``search.url``), through the same
aiosqlite/SQLAlchemy stack as the embedded database.

Message text is indexed with the ``trigram`` tokenizer, so any run of three or more characters matches wherever it
stands, Chinese and Japanese inside longer text included (they have no spaces to split words at). A shorter word
(the two-character 你好) has no trigram: it is found by a scan of the matching rows' text instead, so every word of
a query must appear, whatever its length. Names are indexed by word (``unicode61``) and matched by prefix.

Documents carry the external version of ``tidings.search.model``: an upsert replaces a row only with a higher one.

Each version of an index is a table and its full-text index (version 1: ``messages`` and ``messages_text``, a later
one ``messages_v2`` and ``messages_v2_text``), and ``search_indices`` says which version of each kind is searched
and which are written. A search reads it and the searched tables in one read transaction (one snapshot of the file),
a write reads it in its own write transaction (``BEGIN IMMEDIATE``: no swap comes between), so a swap, one update of
that table, is seen by every process at once, and writers need no settling time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Index,
    MetaData,
    Select,
    Table,
    Text,
    column,
    delete,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import TableClause

from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf
from tidings.search.model import (
    EVERYWHERE,
    KINDS,
    IndexKind,
    IndexVersions,
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
        self._registry_metadata = MetaData()
        self._registry = Table(
            f"{namespace}search_indices",
            self._registry_metadata,
            Column("kind", Text, primary_key=True),
            Column("version", BigInteger, primary_key=True, autoincrement=False),
            Column("searched", Boolean, nullable=False),
            Column("written", Boolean, nullable=False),
        )
        self._tables: dict[tuple[str, int], _Version] = {}

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def ensure(self) -> None:
        """Create the registry of versions, and each kind's first version (searched and written) unless it has
        one; then the tables, full-text indexes and triggers of every version registered (idempotent)."""
        async with self._write() as conn:
            await conn.run_sync(self._registry_metadata.create_all)
            for kind in KINDS:
                versions = list(await conn.scalars(select(self._registry.c.version).where(self._kind(kind))))
                if not versions:
                    await conn.execute(insert(self._registry).values(kind=kind, version=1, searched=True, written=True))
                    versions = [1]
                for version in versions:
                    await self._create(conn, kind, version)

    async def close(self) -> None:
        await self._engine.dispose()

    # -- writes ---------------------------------------------------------------------------------------------------

    async def index_messages(self, docs: Sequence[MessageDoc]) -> None:
        if docs:
            async with self._write() as conn:
                for version in await self._written(conn, "messages"):
                    await self._upsert(conn, self._version("messages", version).table, _message_rows(docs))

    async def recall_messages(self, recalls: Sequence[Recall]) -> None:
        await self.index_messages([tombstone(recall) for recall in recalls])

    async def index_users(self, docs: Sequence[UserDoc]) -> None:
        if docs:
            async with self._write() as conn:
                for version in await self._written(conn, "users"):
                    await self._upsert(conn, self._version("users", version).table, _user_rows(docs))

    async def rename_sender(self, sender_id: int, sender_name: str) -> int:
        changed = 0
        async with self._write() as conn:
            for version in await self._written(conn, "messages"):
                messages = self._version("messages", version).table
                m = messages.c
                # One more on the version, as OpenSearch's update_by_query does: still below the next event's.
                statement = (
                    update(messages)
                    .where(m.sender_id == sender_id, m.sender_name != sender_name, m.recalled.is_(False))
                    .values(sender_name=sender_name, version=m.version + 1)
                )
                changed += (await conn.execute(statement)).rowcount
        return changed

    async def delete_below(self, conversation_id: int, seq: int) -> int:
        deleted = 0
        async with self._write() as conn:
            for version in await self._written(conn, "messages"):
                messages = self._version("messages", version).table
                statement = delete(messages).where(messages.c.conversation_id == conversation_id, messages.c.seq < seq)
                deleted += (await conn.execute(statement)).rowcount
        return deleted

    @staticmethod
    async def _upsert(conn: AsyncConnection, target: Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, or replace a stored row only by one of a higher version."""
        statement = sqlite_insert(target)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={name: statement.excluded[name] for name in rows[0] if name != "id"},
            where=statement.excluded.version > target.c.version,
        )
        await conn.execute(statement, rows)

    # -- rebuilds (IndexAdmin) ------------------------------------------------------------------------------------

    @property
    def settle_s(self) -> float:
        return 0.0  # every write reads the versions written in its own transaction

    async def versions(self, kind: IndexKind) -> IndexVersions:
        async with self._read() as conn:
            rows = (await conn.execute(select(self._registry).where(self._kind(kind)))).all()
        searched = max((row.version for row in rows if row.searched), default=0)
        return IndexVersions(searched, tuple(sorted(row.version for row in rows if row.written)))

    async def create_next(self, kind: IndexKind) -> int:
        async with self._write() as conn:
            last = await conn.scalar(select(func.max(self._registry.c.version)).where(self._kind(kind)))
            version = int(last or 0) + 1
            await self._create(conn, kind, version)
            await conn.execute(insert(self._registry).values(kind=kind, version=version, searched=False, written=True))
        return version

    async def put_messages(self, version: int, docs: Sequence[MessageDoc]) -> None:
        if docs:
            async with self._write() as conn:
                await self._upsert(conn, self._version("messages", version).table, _message_rows(docs))

    async def put_users(self, version: int, docs: Sequence[UserDoc]) -> None:
        if docs:
            async with self._write() as conn:
                await self._upsert(conn, self._version("users", version).table, _user_rows(docs))

    async def swap(self, kind: IndexKind, version: int) -> None:
        chosen = self._registry.c.version == version
        async with self._write() as conn:
            await conn.execute(update(self._registry).where(self._kind(kind)).values(searched=chosen, written=chosen))

    async def drop(self, kind: IndexKind, version: int) -> None:
        tables = self._version(kind, version)
        async with self._write() as conn:
            row = self._kind(kind) & (self._registry.c.version == version)
            if await conn.scalar(select(self._registry.c.searched).where(row)):
                raise ValueError(f"{tables.table.name} is searched: swap another version in first")
            await conn.execute(delete(self._registry).where(row))
            # Its triggers and indexes go with the table.
            await conn.execute(text(f"DROP TABLE IF EXISTS {_quoted(tables.fts.name)}"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {_quoted(tables.table.name)}"))

    async def _create(self, conn: AsyncConnection, kind: str, version: int) -> None:
        tables = self._version(kind, version)
        await conn.run_sync(tables.table.metadata.create_all)
        for statement in tables.ddl:
            await conn.execute(text(statement))

    async def _written(self, conn: AsyncConnection, kind: str) -> list[int]:
        registry = self._registry.c
        return list(await conn.scalars(select(registry.version).where(self._kind(kind), registry.written.is_(True))))

    async def _searched(self, conn: AsyncConnection, kind: str) -> _Version:
        registry = self._registry.c
        version = await conn.scalar(select(registry.version).where(self._kind(kind), registry.searched.is_(True)))
        if version is None:
            raise SearchUnavailable(f"search index: no {kind} index yet (run tidings migrate)")
        return self._version(kind, version)

    def _kind(self, kind: str) -> ColumnElement[bool]:
        return self._registry.c.kind == kind

    def _version(self, kind: str, version: int) -> _Version:
        """The tables of one version of ``kind``'s index (version 1 keeps the names from before versions)."""
        if (kind, version) not in self._tables:
            base = f"{self._namespace}{kind}" + ("" if version == 1 else f"_v{version}")
            build = _message_tables if kind == "messages" else _user_tables
            self._tables[kind, version] = build(base)
        return self._tables[kind, version]

    # -- reads ----------------------------------------------------------------------------------------------------

    async def search_messages(self, query: MessageQuery) -> Page[MessageHit]:
        after = decode_cursor(query.cursor) if query.cursor is not None else None
        if not query.conversation_ids:
            return Page([])
        async with self._read() as conn:
            tables = await self._searched(conn, "messages")
            m = tables.table.c
            statement = select(tables.table).where(m.recalled.is_(False))
            if query.conversation_ids is not EVERYWHERE:
                statement = statement.where(m.conversation_id.in_(list(query.conversation_ids)))
            long_terms = [term for term in query.terms if len(term) >= TRIGRAM]
            if long_terms:
                match = " AND ".join(_phrase(term) for term in long_terms)
                statement = statement.where(m.id.in_(self._matching(tables.fts, match)))
            for term in query.terms:
                if len(term) < TRIGRAM:
                    statement = statement.where(func.instr(getattr(func, _FOLD)(m.text), term.casefold()) > 0)
            if after is not None:
                statement = statement.where(
                    tuple_(m.created_at_ms, m.id) < tuple_(literal(after[0]), literal(after[1]))
                )
            statement = statement.order_by(m.created_at_ms.desc(), m.id.desc()).limit(query.limit + 1)
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
        match = " AND ".join(_phrase(term) + "*" for term in terms)
        async with self._read() as conn:
            tables = await self._searched(conn, "users")
            users, names = tables.table, tables.fts.c
            statement = (
                select(users)
                .join(tables.fts, names.rowid == users.c.id)
                .where(literal_column(_quoted(tables.fts.name)).op("MATCH")(match))
                .order_by(names.rank, users.c.id)
                .limit(limit)
            )
            rows = (await conn.execute(statement)).mappings().all()
        return [UserDoc(**row) for row in rows]

    @staticmethod
    def _matching(fts: TableClause, match: str) -> Select[Any]:
        """The rowids an FTS5 table matches for ``match`` (an FTS5 query of quoted words)."""
        return select(fts.c.rowid).where(literal_column(_quoted(fts.name)).op("MATCH")(match))

    # -- connections ----------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction that holds the file's write lock from its start (``BEGIN IMMEDIATE``), so what it
        reads of ``search_indices`` stays true until it commits."""
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.begin() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except db.UNREACHABLE as exc:
            raise SearchUnavailable(f"search index: {exc!r}") from exc
        except TimeoutError as exc:
            raise SearchUnavailable("search index: timed out") from exc
        except IntegrityError as exc:
            raise RejectedDocument(str(exc)) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one snapshot of the file for all its statements (a drop committed meanwhile by
        another connection does not pull the tables from under it)."""
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as conn:
                await conn.exec_driver_sql("BEGIN")
                yield conn
        except db.UNREACHABLE as exc:
            raise SearchUnavailable(f"search index: {exc!r}") from exc
        except TimeoutError as exc:
            raise SearchUnavailable("search index: timed out") from exc


@dataclass(frozen=True)
class _Version:
    """One version of an index: its table, its full-text index (named the way SQLite's MATCH wants it: the table
    itself on the left) and the statements that create the full-text index and the triggers keeping it in step."""

    table: Table
    fts: TableClause
    ddl: list[str]


def _message_tables(base: str) -> _Version:
    table = Table(
        base,
        MetaData(),
        Column("id", BigInteger, primary_key=True, autoincrement=False),
        Column("conversation_id", BigInteger, nullable=False),
        Column("sender_id", BigInteger, nullable=False),
        Column("sender_name", Text, nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("created_at_ms", BigInteger, nullable=False),
        Column("text", Text, nullable=False),
        Column("recalled", Boolean, nullable=False),
        Column("version", BigInteger, nullable=False),
        Index(f"{base}_by_time", "conversation_id", "created_at_ms", "id"),
        Index(f"{base}_by_sender", "sender_id"),
    )
    fts = base + "_text"
    ddl = [_fts_table(fts, base, ["text"], "trigram"), *_sync_triggers(base, fts, ["text"])]
    return _Version(table, sql_table(fts, column("rowid")), ddl)


def _user_tables(base: str) -> _Version:
    table = Table(
        base,
        MetaData(),
        Column("id", BigInteger, primary_key=True, autoincrement=False),
        Column("username", Text, nullable=False),
        Column("display_name", Text, nullable=False),
        Column("version", BigInteger, nullable=False),
    )
    fts, columns = base + "_names", ["username", "display_name"]
    ddl = [_fts_table(fts, base, columns, "unicode61"), *_sync_triggers(base, fts, columns)]
    return _Version(table, sql_table(fts, column("rowid"), column("rank")), ddl)


def _message_rows(docs: Sequence[MessageDoc]) -> list[dict[str, Any]]:
    return [
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


def _user_rows(docs: Sequence[UserDoc]) -> list[dict[str, Any]]:
    return [{"id": d.id, "username": d.username, "display_name": d.display_name, "version": d.version} for d in docs]


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
