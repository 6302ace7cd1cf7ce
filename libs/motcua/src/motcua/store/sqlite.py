"""Embedded SQLite backend of the persistence port (the default on one machine).

Layout: one table per collection, ``(_id TEXT PRIMARY KEY, version INTEGER, doc TEXT)`` where
``doc`` is the whole document as JSON, and one expression index per declared mongoengine index
over ``json_extract(doc, ...)``. Queries are translated to SQL on the very same expressions, so
the planner uses those indexes; fields without an index are refused (see ``Schema.check_query``).

Datetimes are stored as ``{"$date": "YYYY-MM-DDTHH:MM:SS.mmmZ"}`` (MongoDB extended JSON): a
fixed-width UTC text, so comparing and indexing the text orders the instants; reading turns it
back into a tz-aware UTC datetime. Date fields are indexed on the ``."$date"`` text.

Concurrency:

* Several processes may share the file: WAL lets readers run beside one writer, and every
  read-modify-write runs inside ``BEGIN IMMEDIATE``, which takes the write lock *before* reading,
  so two writers can never act on the same snapshot (no lost update, no double claim) and never
  need to upgrade a read lock (no SQLITE_BUSY deadlock). ``busy_timeout`` makes a writer wait for
  the lock instead of failing.
* ``synchronous=FULL`` (the default): each commit fsyncs the WAL, so a write the caller was told
  about survives a power loss, not just a process crash (NORMAL may lose the last commits on power
  loss). Events are published after the write; losing the write behind a published event is worse
  than ~0.3 ms per commit.
* Threads and green threads: a small pool of connections, each used by one caller at a time.
  grpcio's thread pool gets one connection per concurrent thread (readers run in parallel), and an
  eventlet-patched nameko worker works unchanged: the pool is a plain list (atomic append/pop, no
  lock to block on), and since sqlite3 calls never yield to the hub, in practice green threads
  reuse a single connection. A green thread waiting on another *process's* write lock does block
  its whole OS thread for that wait (sqlite3 is C code eventlet cannot patch); write transactions
  here are short (one statement or one read plus one write), so this stays in milliseconds.
* Writers of one process queue on a lock of the store before ``BEGIN IMMEDIATE``: SQLite's own
  busy handler *sleeps* between attempts (1, 2, 5 … up to 100 ms), so threads racing for the
  write lock inside SQLite waited far longer than the ~0.5 ms a commit takes (measured: 16 grpcio
  threads spent 60 % of SubmitDossier waiting there, p99 near a second). The lock is a native one
  even in an eventlet-patched process: a write transaction never yields to the hub, so green
  threads never contend for it, and OS threads (grpcio's pool) block on it and are woken at once.
  Other *processes* still meet at SQLite's lock through ``busy_timeout``.
* Group commit: single-statement writes (insert, replace, update_fields, delete, counters) that
  threads make at the same moment share one transaction and one fsync (``SqliteStore._apply``);
  each caller still returns only once its write is committed, with its own result or error.
  Read-modify-write transactions (claim, pull) keep a transaction of their own (``_write``).
* Writes together (``SqliteStore.together``): the writes a caller makes inside the block share one
  transaction, which holds the write lock from its start to its commit: a use case's write and the
  processed-message record of the message it completes, one fsync for both, or neither.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from mongoengine import Document, EmbeddedDocumentField
from mongoengine.base import ComplexBaseField

from motcua import metrics

from .port import Doc, DuplicateKey, Filter, InvalidDocument, Sort, VersionConflict
from .schema import Schema, conditions, normalize, schema_of, utc_ms

COUNTERS = "_motcua_counters"
BACKEND = "sqlite"  # the label of this backend's cost-accounting series (motcua.metrics)
BUSY_TIMEOUT_S = 60.0  # several processes queueing for the write lock, each commit fsyncing
_IDLE_MAX = 32  # idle connections kept; more only exist while more callers run at once
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RANGE = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


# -- JSON with datetimes ------------------------------------------------------------------------


def iso(value: datetime) -> str:
    """Fixed-width UTC text (24 characters), ordered like the instants it names."""
    return utc_ms(value).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": iso(value)}
    raise TypeError(f"{type(value).__name__} is not storable in the SQLite backend")


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$date" in obj:
        return datetime.fromisoformat(obj["$date"])  # "...Z" -> tzinfo=UTC
    return obj


_ENCODER = json.JSONEncoder(default=_tag, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder()
_DATE_DECODER = json.JSONDecoder(object_hook=_untag)


def dumps(doc: Doc) -> str:
    try:
        return _ENCODER.encode(doc)
    except (TypeError, ValueError) as exc:  # NaN, bytes, ObjectId...: not JSON
        raise InvalidDocument(str(exc)) from exc


def loads(text: str) -> Doc:
    # The object_hook costs a Python call per object; skip it for documents without dates.
    return (_DATE_DECODER if '"$date"' in text else _DECODER).decode(text)


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str | int | float) or value is None:  # bool is an int: JSON true -> 1
        return value
    raise ValueError(f"unsupported filter value {value!r}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- connections --------------------------------------------------------------------------------


def _native_threading() -> Any:
    """The ``threading`` of the OS, also in a process eventlet has monkey-patched (where
    ``threading.Lock`` is a green lock an OS thread must not wait on). eventlet is never imported
    here. A write never yields to the hub, so green threads never wait on these primitives."""
    patcher = sys.modules.get("eventlet.patcher")
    return patcher.original("threading") if patcher is not None else threading


class _Write:
    """One single-statement write waiting for a group commit, and then its outcome."""

    __slots__ = ("run", "result", "error", "done", "wake", "changed")

    def __init__(self, run: Callable[[sqlite3.Connection], Any]):
        self.run = run
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.changed = False  # rows changed: what the cost accounting counts (not a version conflict)
        self.wake: Any = None  # held while its writer waits: released once done, or to hand it the lead


class _Together:
    """The transaction of a :meth:`SqliteStore.together` block, and what its writes changed."""

    __slots__ = ("store", "conn", "written")

    def __init__(self, store: SqliteStore, conn: sqlite3.Connection):
        self.store = store
        self.conn = conn
        self.written: list[str] = []  # collections written, counted once the block commits


# The open block of this thread or green thread (each greenlet has a context of its own).
_TOGETHER: ContextVar[_Together | None] = ContextVar("motcua_sqlite_together", default=None)


def _enter_wal(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch the file to WAL (a no-op once it is). SQLite may answer "database is locked" to the
    switch at once, without its busy handler, while another process opens the same fresh file
    (several api processes starting together): try again for a few seconds."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


class _Pool:
    """Connections handed to one caller at a time (see the module docstring for why a pool)."""

    def __init__(self, path: Path, synchronous: str):
        self.path = path
        self.synchronous = synchronous
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._inherited: list[sqlite3.Connection] = []
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE/COMMIT ourselves.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        _enter_wal(conn)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    def acquire(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("store is closed")
        if os.getpid() != self._pid:
            # A forked child must neither use nor close its parent's connections (SQLite's rule);
            # keeping a reference stops the garbage collector from closing them here.
            self._inherited, self._idle, self._pid = self._idle, [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def release(self, conn: sqlite3.Connection) -> None:
        if self._closed or len(self._idle) >= _IDLE_MAX:
            conn.close()
        else:
            self._idle.append(conn)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.acquire()
        try:
            yield conn
        finally:
            self.release(conn)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


# -- collections --------------------------------------------------------------------------------


class SqliteCollection:
    def __init__(self, store: SqliteStore, schema: Schema):
        self._store = store
        self.schema = schema
        self.name = schema.name
        self._table = _quote(schema.name)
        self._get_sql = f"SELECT doc FROM {self._table} WHERE _id = ?"
        for index in schema.indexes:  # refuse what an expression index cannot represent
            for field, direction in index.fields:
                declared = schema.fields.get(field)
                if direction not in (1, -1) or declared is None or not _NAME.fullmatch(field):
                    raise ValueError(f"{self.name}: index on {field!r} ({direction!r}) is not supported")
                if isinstance(declared, ComplexBaseField | EmbeddedDocumentField):
                    raise ValueError(f"{self.name}: index on array/dict/embedded {field!r} is not supported")

    def _expr(self, field: str) -> str:
        """The SQL expression of a field: identical text in the indexes and in the queries, which
        is what lets SQLite match an expression index."""
        if field == "_id":
            return "_id"
        suffix = '."$date"' if field in self.schema.datetime_fields else ""
        return f"json_extract(doc, '$.\"{field}\"{suffix}')"

    def create(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} "
            "(_id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL)"
        )
        for index in self.schema.indexes:
            exprs = [self._expr(f) for f, _ in index.fields]
            directions = ["DESC" if d == -1 else "ASC" for _, d in index.fields]
            columns = ", ".join(f"{e} {d}" for e, d in zip(exprs, directions, strict=True))
            slug = "__".join(f + ("_desc" if d == -1 else "") for f, d in index.fields)
            kind = "UNIQUE INDEX" if index.unique else "INDEX"
            name = f"{'ux' if index.unique else 'ix'}_{self.name}__{slug}"
            conn.execute(f"CREATE {kind} IF NOT EXISTS {_quote(name)} ON {self._table} ({columns})")
            if index.unique and not index.sparse:
                # SQLite lets NULLs repeat in a unique index; MongoDB's non-sparse unique index
                # treats a missing field as the value null and allows it once. This small partial
                # index (only rows missing a field) maps NULL to an empty blob, a value no JSON
                # field ever extracts to, and so enforces exactly that.
                missing = " OR ".join(f"{e} IS NULL" for e in exprs)
                keys = ", ".join(f"ifnull({e}, x'')" for e in exprs)
                conn.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {_quote(name + '__null')} "
                    f"ON {self._table} ({keys}) WHERE {missing}"
                )

    # -- query translation ----------------------------------------------------------------------

    def _where(self, filter: Filter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for field, cond in filter.items():
            expr = self._expr(field)
            for op, value in conditions(cond).items():
                if op == "$eq" and value is None:
                    clauses.append(f"{expr} IS NULL")  # like MongoDB: missing or null
                elif op == "$eq":
                    clauses.append(f"{expr} = ?")
                    params.append(_param(value))
                elif op == "$ne":
                    clauses.append(f"{expr} IS NOT ?")  # null-safe: a missing field is "not equal"
                    params.append(_param(value))
                elif op == "$in":
                    values = [_param(v) for v in value if v is not None]
                    parts = [f"{expr} IN ({', '.join('?' * len(values))})"] if values else []
                    parts += [f"{expr} IS NULL"] if any(v is None for v in value) else []
                    clauses.append("(" + " OR ".join(parts) + ")" if parts else "0")
                    params.extend(values)
                else:
                    if value is None:
                        raise ValueError(f"{self.name}: {op} null is not supported")
                    clauses.append(f"{expr} {_RANGE[op]} ?")
                    params.append(_param(value))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _select(self, what: str, filter: Filter, sort: Sort = (), limit: int | None = None):
        self.schema.check_query(filter, sort)
        where, params = self._where(filter)
        sql = f"SELECT {what} FROM {self._table}{where}"
        if sort:
            sql += " ORDER BY " + ", ".join(f"{self._expr(f)} {'ASC' if d == 1 else 'DESC'}" for f, d in sort)
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must be >= 0")
            sql += " LIMIT ?"
            params.append(limit)
        return sql, params

    def query_plan(self, filter: Filter, sort: Sort = (), limit: int | None = None) -> str:
        """``EXPLAIN QUERY PLAN`` of ``find`` (for tests and for checking a new query by hand)."""
        sql, params = self._select("doc", filter, sort, limit)
        with self._store._pool.connection() as conn:
            return "\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    # -- the port -------------------------------------------------------------------------------

    def insert(self, doc: Doc) -> Doc:
        stored = self.schema.prepare(doc, version=1)
        text = dumps(stored)
        sql = f"INSERT INTO {self._table} (_id, version, doc) VALUES (?, 1, ?)"
        self._store._apply(lambda conn: self._execute(conn, sql, (stored["_id"], text)).rowcount, self.name)
        return loads(text)

    def get(self, doc_id: str) -> Doc | None:
        pool = self._store._pool  # acquire/release inline: this is the hottest path
        conn = pool.acquire()
        try:
            row = conn.execute(self._get_sql, (doc_id,)).fetchone()
        finally:
            pool.release(conn)
        return None if row is None else loads(row[0])

    def replace(self, doc: Doc, expected_version: int) -> Doc:
        stored = self.schema.prepare(doc, version=expected_version + 1)
        text = dumps(stored)
        sql = f"UPDATE {self._table} SET version = ?, doc = ? WHERE _id = ? AND version = ?"
        params = (expected_version + 1, text, stored["_id"], expected_version)
        if self._store._apply(lambda conn: self._execute(conn, sql, params).rowcount, self.name) == 0:
            raise VersionConflict(f"{self.name}/{stored['_id']}: not at version {expected_version}")
        return loads(text)

    def update_fields(self, doc_id: str, expected_version: int, set_fields: Mapping[str, Any]) -> None:
        changes = self.schema.prepare_fields(set_fields)
        version = expected_version + 1
        # json_set on the stored text: the fields given (and the copy of the version the document
        # carries) change; the rest of the document is neither decoded nor validated again.
        params: list[Any] = [version, version]
        for name, value in changes.items():
            params += [f'$."{name}"', dumps(value)]
        paths = ", ?, json(?)" * len(changes)
        sql = (f"UPDATE {self._table} SET version = ?, doc = json_set(doc, '$.version', ?{paths}) "
               "WHERE _id = ? AND version = ?")
        params += [doc_id, expected_version]
        if self._store._apply(lambda conn: self._execute(conn, sql, params).rowcount, self.name) == 0:
            raise VersionConflict(f"{self.name}/{doc_id}: not at version {expected_version}")

    def find(self, filter: Filter, sort: Sort = (), limit: int | None = None) -> list[Doc]:
        sql, params = self._select("doc", filter, sort, limit)
        with self._store._pool.connection() as conn:
            return [loads(text) for (text,) in conn.execute(sql, params)]

    def count(self, filter: Filter) -> int:
        sql, params = self._select("count(*)", filter)
        with self._store._pool.connection() as conn:
            return conn.execute(sql, params).fetchone()[0]

    def claim(self, filter: Filter, set_fields: Mapping[str, Any], sort: Sort = ()) -> Doc | None:
        changes = self.schema.prepare_fields(set_fields)
        sql, params = self._select("doc", filter, sort, limit=1)
        # The write lock is taken before the SELECT: no other process can claim the same row
        # between our read and our write.
        with self._store._write(self.name) as conn:
            row = conn.execute(sql, params).fetchone()
            if row is None:
                return None
            doc = loads(row[0])
            doc.update(changes)
            doc["version"] += 1
            self._execute(conn, f"UPDATE {self._table} SET version = ?, doc = ? WHERE _id = ?",
                          (doc["version"], dumps(doc), doc["_id"]))
        return doc

    def pull(self, doc_id: str, field: str, key: str, values: Sequence[Any]) -> None:
        self.schema.check_array(field)
        values = normalize(list(values))
        with self._store._write(self.name) as conn:
            row = conn.execute(f"SELECT doc FROM {self._table} WHERE _id = ?", (doc_id,)).fetchone()
            if row is None:
                return
            doc = loads(row[0])
            items = doc.get(field)
            if items is not None and not isinstance(items, list):
                raise InvalidDocument(f"{self.name}/{doc_id}: {field!r} is not an array")
            if items is not None:
                doc[field] = [i for i in items if not (isinstance(i, dict) and key in i and i[key] in values)]
            doc["version"] += 1
            conn.execute(f"UPDATE {self._table} SET version = ?, doc = ? WHERE _id = ?",
                         (doc["version"], dumps(doc), doc_id))

    def delete(self, doc_id: str) -> bool:
        sql = f"DELETE FROM {self._table} WHERE _id = ?"
        return self._store._apply(lambda conn: conn.execute(sql, (doc_id,)).rowcount, self.name) > 0

    def _execute(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:  # the primary key or a unique index
            raise DuplicateKey(f"{self.name}: {exc}") from exc


class SqliteStore:
    """The port on one SQLite file; safe to open from several processes at once."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL"):
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous={synchronous!r}")
        self.path = Path(path)
        self._pool = _Pool(self.path, synchronous.upper())
        self._init_locks()
        self._collections: dict[type[Document], SqliteCollection] = {}
        with self._write() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {COUNTERS} "
                         "(name TEXT PRIMARY KEY, value INTEGER NOT NULL)")

    def _init_locks(self) -> None:
        native = _native_threading()
        self._pid = os.getpid()
        self._write_lock = native.Lock()  # this process's writers queue here (module docstring)
        self._turn = native.Lock()  # group commit (see _apply): the queue and who leads
        self._new_lock = native.Lock
        self._queued: list[_Write] = []
        self._leading = False

    def _forked(self) -> None:
        """In a forked child: fresh locks (a parent's thread may have held one at the fork)."""
        if self._pid != os.getpid():
            self._init_locks()

    @contextmanager
    def _write(self, collection: str = "") -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its first statement; counted
        as a write to ``collection`` once committed, if it changed rows (a claim that found nothing
        writes nothing, and its empty commit syncs nothing)."""
        block = self._open_block()
        if block is not None:  # inside together(): part of its transaction
            before = block.conn.total_changes
            yield block.conn
            if collection and block.conn.total_changes != before:
                block.written.append(collection)
            return
        self._forked()
        with self._write_lock, self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            try:
                yield conn
                conn.execute("COMMIT")
                if conn.total_changes != before:
                    self._committed()
                    if collection:
                        metrics.store_written(BACKEND, collection)
            except BaseException:  # GreenletExit and KeyboardInterrupt too: never leave it open
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _apply(self, run: Callable[[sqlite3.Connection], Any], collection: str) -> Any:
        """Run a write that is one statement (``run(conn)``, which must finish its statement:
        ``fetchall`` a RETURNING) and return what ``run`` returns once it is committed.

        Group commit: the writes this process's threads make at the same moment are committed
        together. The first caller to find no commit under way leads: it takes the write lock and
        runs every write queued so far in one ``BEGIN IMMEDIATE`` … ``COMMIT`` (one fsync, one
        turn of the lock); the others wait until the commit that holds theirs is done, and each
        gets its own result or exception. A failing statement (a unique index: DuplicateKey) is
        undone by SQLite alone and the others still commit; if the transaction itself fails, every
        write in it gets the error. Durability is unchanged: nobody returns before the COMMIT
        holding their write. A leader alone (the usual case without concurrency, and always under
        eventlet, whose green threads never wait here) runs its statement as its own transaction
        (autocommit: the write lock from the statement's start to its commit, like ``_write``)."""
        block = self._open_block()
        if block is not None:
            return self._apply_in(block, run, collection)
        self._forked()
        mine = _Write(run)
        with self._turn:
            if self._leading:  # wait: each waiter is woken once, by the lock of its own
                mine.wake = self._new_lock()
                mine.wake.acquire()
                self._queued.append(mine)
            else:
                self._leading = True
        if mine.wake is not None:
            try:
                mine.wake.acquire()  # until our write is committed, or the lead is handed to us
            except BaseException:  # interrupted (KeyboardInterrupt): leave nobody waiting on us
                with self._turn:
                    if mine in self._queued:
                        self._queued.remove(mine)  # our write will not run
                        raise
                if not mine.done:  # we were handed the lead: pass it on
                    self._hand_over([])
                raise
        if not mine.done:
            with self._turn:
                batch, self._queued = [mine, *self._queued], []
            try:
                self._commit(batch)
            finally:
                self._hand_over(batch[1:])
        if mine.error is not None:
            raise mine.error
        if mine.changed:
            metrics.store_written(BACKEND, collection)
        return mine.result

    @contextmanager
    def together(self) -> Iterator[None]:
        """The writes of this block (this caller's, through this store's collections) in one
        transaction: committed together, with one fsync, or rolled back together if the block
        raises. A block inside a block is part of it."""
        if self._open_block() is not None:
            yield
            return
        with self._write() as conn:
            block = _Together(self, conn)
            token = _TOGETHER.set(block)
            try:
                yield
            finally:
                _TOGETHER.reset(token)
        for collection in block.written:
            metrics.store_written(BACKEND, collection)

    def _open_block(self) -> _Together | None:
        block = _TOGETHER.get()
        return block if block is not None and block.store is self else None

    def _apply_in(self, block: _Together, run: Callable[[sqlite3.Connection], Any], collection: str) -> Any:
        """A single-statement write inside a together() block: run on its transaction."""
        write = _Write(run)
        self._run_one(block.conn, write)
        if not block.conn.in_transaction:  # SQLite gave up the whole transaction: the block fails
            raise write.error or sqlite3.OperationalError("transaction rolled back")
        if write.error is not None:
            raise write.error
        if write.changed:
            block.written.append(collection)
        return write.result

    def _hand_over(self, served: list[_Write]) -> None:
        """After a commit: wake the writers it served, and the first writer queued since (it
        leads next), or end the lead."""
        with self._turn:
            successor = self._queued.pop(0) if self._queued else None
            if successor is None:
                self._leading = False
        for write in served:
            write.wake.release()
        if successor is not None:
            successor.wake.release()

    def _commit(self, batch: list[_Write]) -> None:
        try:
            with self._write_lock, self._pool.connection() as conn:
                if len(batch) == 1:
                    self._run_one(conn, batch[0])
                    if conn.in_transaction:  # a statement left unfinished: never keep it open
                        conn.execute("ROLLBACK")
                        batch[0].result = None
                        batch[0].error = sqlite3.ProgrammingError("write statement left unfinished")
                    elif batch[0].error is None and batch[0].changed:
                        self._committed()  # its own transaction (autocommit)
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for write in batch:
                        self._run_one(conn, write)
                        if not conn.in_transaction:  # SQLite gave up the whole transaction
                            raise write.error or sqlite3.OperationalError("transaction rolled back")
                    conn.execute("COMMIT")
                    if any(write.changed for write in batch):
                        self._committed()
                except BaseException as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    for write in batch:  # nothing of this transaction was kept
                        if write.error is None:
                            write.result, write.error = None, exc
        except BaseException as exc:  # e.g. the store is closed: every waiter learns it
            for write in batch:
                if write.error is None and not write.done:
                    write.result, write.error = None, exc
            raise
        finally:
            for write in batch:
                write.done = True

    def _committed(self) -> None:
        metrics.store_committed(BACKEND, self._pool.synchronous)

    @staticmethod
    def _run_one(conn: sqlite3.Connection, write: _Write) -> None:
        before = conn.total_changes
        try:
            write.result = write.run(conn)
            write.changed = conn.total_changes != before
        except Exception as exc:  # this write's own failure, raised in its caller's thread
            write.error = exc

    def collection(self, schema: type[Document]) -> SqliteCollection:
        coll = self._collections.get(schema)
        if coll is None:
            coll = SqliteCollection(self, schema_of(schema))
            with self._write() as conn:
                coll.create(conn)
            self._collections[schema] = coll  # a race only creates (IF NOT EXISTS) twice
        return coll

    def next_value(self, counter: str) -> int:
        sql = (f"INSERT INTO {COUNTERS} (name, value) VALUES (?, 1) "
               "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value")
        # fetchall: the statement runs to its end, so that it is complete when it commits
        ((value,),) = self._apply(lambda conn: conn.execute(sql, (counter,)).fetchall(), COUNTERS)
        return value

    def close(self) -> None:
        self._pool.close()
