"""The persistence port: what every service's repositories need from a document store.

Two backends implement it with the same behaviour, proven by one contract test suite
(``libs/motcua/tests/test_store_contract.py``):

* :mod:`motcua.store.mongo` — MongoDB through mongoengine/pymongo (production; selected when
  ``MOTCUA_MONGO_URI`` is set);
* :mod:`motcua.store.sqlite` — embedded SQLite (the default on one machine): JSON documents with
  indexed columns declared from the mongoengine schema, WAL, safe with several processes.

The schema of a collection is a mongoengine ``Document`` class declared in a service's adapters:
its fields validate documents and its ``meta['indexes']`` (and ``unique=True`` fields) declare the
indexes both backends build. Documents cross the port as plain dicts whose primary key is ``_id``
(a string) and whose optimistic-concurrency counter is ``version`` (set to 1 by ``insert`` and
incremented by every write).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Doc = dict[str, Any]
Filter = Mapping[str, Any]
Sort = Sequence[tuple[str, int]]  # (field, 1 ascending | -1 descending)


@dataclass(frozen=True)
class Mapper:
    """How one kind of aggregate is stored, handed to the application by its entrypoint (the
    application never imports its adapters): ``schema`` (the collection's mongoengine Document
    class, opaque to the use case, which only passes it to the unit of work), and the two
    functions between the domain object and the document that crosses this port. A service whose
    mapping needs more than the object (routing's indicator columns, its calendar) passes those
    as further arguments."""

    schema: type
    to_document: Callable[..., Doc]
    from_document: Callable[..., Any]


class StoreError(Exception):
    """Base of every persistence failure the application layer may handle."""


class DuplicateKey(StoreError):
    """A unique index (the primary key included) already holds this value."""


class VersionConflict(StoreError):
    """A write named a version that is no longer the stored one (optimistic concurrency)."""


class InvalidDocument(StoreError):
    """The document does not satisfy its mongoengine schema."""


class Collection(Protocol):
    name: str

    def insert(self, doc: Doc) -> Doc:
        """Store a new document (``_id`` required); sets ``version`` to 1 and returns the stored
        document. Raises DuplicateKey, InvalidDocument."""

    def get(self, doc_id: str) -> Doc | None:
        """The document with this ``_id``, or None."""

    def replace(self, doc: Doc, expected_version: int) -> Doc:
        """Write the whole document if the stored version is still ``expected_version``; the
        stored version becomes ``expected_version + 1``. Raises VersionConflict (also when the
        document does not exist), DuplicateKey, InvalidDocument."""

    def update_fields(self, doc_id: str, expected_version: int, set_fields: Mapping[str, Any]) -> None:
        """Set ``set_fields`` (validated field by field, as ``claim`` does) on the document if the
        stored version is still ``expected_version``; the version becomes ``expected_version + 1``
        and every other field stays as stored. Raises VersionConflict (also when the document does
        not exist), DuplicateKey, InvalidDocument. For a change of a few fields of a document read
        or written just before (the outbox clearing its entries after publishing them), it costs
        a fraction of ``replace``, which validates and rewrites the whole document."""

    def find(self, filter: Filter, sort: Sort = (), limit: int | None = None) -> list[Doc]:
        """Documents matching ``filter``, ordered by ``sort``, at most ``limit``.

        A filter maps a field to a value (equality) or to operators ``$lt $lte $gt $gte $ne $in``;
        conditions are AND-ed. Only ``_id`` and indexed fields may be filtered or sorted on, and a
        non-empty filter must narrow on ``_id`` or on the first field of a declared index (not
        with ``$ne``): both backends refuse other queries with ValueError, so every query is
        index-bound wherever it runs. Documents come back as stored (mongoengine's ``to_mongo``
        form; datetimes tz-aware UTC, truncated to milliseconds)."""

    def count(self, filter: Filter) -> int:
        """How many documents match ``filter`` (same rules as ``find``)."""

    def claim(self, filter: Filter, set_fields: Mapping[str, Any], sort: Sort = ()) -> Doc | None:
        """Atomically take the first document matching ``filter`` (in ``sort`` order), set
        ``set_fields`` on it, bump its version, and return it as stored after the change; None
        when nothing matches. Two concurrent claims never return the same document for a filter
        that the change makes false (find-and-modify)."""

    def pull(self, doc_id: str, field: str, key: str, values: Sequence[Any]) -> None:
        """Atomically remove from the array ``field`` the items whose ``item[key]`` is in
        ``values``, bumping the version (used to clear published outbox entries)."""

    def delete(self, doc_id: str) -> bool:
        """Remove the document; True when it existed."""


class Store(Protocol):
    def collection(self, schema: type) -> Collection:
        """The collection described by a mongoengine Document class (indexes created on first
        use)."""

    def next_value(self, counter: str) -> int:
        """Atomically increment a named counter and return its new value (first call: 1)."""

    def together(self) -> AbstractContextManager[None]:
        """A block whose writes (this caller's, through this store's collections) are stored
        together: SQLite commits them in one transaction (one fsync) or none of them, if the block
        raises; the in-memory store under its lock. MongoDB writes them one by one, in order (a
        multi-document transaction needs a replica set and a session in every call): code using
        it must stay correct when only the first writes of the block are stored. Keep the block to
        a few writes, with no I/O besides them: SQLite holds its write lock for the whole block
        (and its reads, on other connections, do not see the block's writes before its commit).
        For a use case's write and the processed-message record of the message it completes
        (:meth:`motcua.unit_of_work.UnitOfWork.commit`)."""

    def close(self) -> None: ...
