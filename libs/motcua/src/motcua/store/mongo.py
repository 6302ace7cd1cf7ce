"""MongoDB backend of the persistence port (production; selected when ``MOTCUA_MONGO_URI`` is set).

The mongoengine Document stays the schema (validation, declared indexes, collection name), but
reads and writes go through pymongo directly: the port deals in plain dicts, and the atomic
operations it needs (version-checked replace, find-and-modify, ``$pull``, counters) are single
pymongo calls. Tests pass ``client_class=mongomock.MongoClient``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from typing import Any

import pymongo
from mongoengine import Document
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from pymongo.uri_parser import parse_uri

from .port import Doc, DuplicateKey, Filter, Sort, VersionConflict
from .schema import Schema, normalize, schema_of

COUNTERS = "_motcua_counters"
DEFAULT_DB = "motcua"


class MongoCollection:
    def __init__(self, collection: Any, schema: Schema):
        self._coll = collection
        self.schema = schema
        self.name = schema.name

    def create_indexes(self) -> None:
        # The options are mongoengine's computed index_specs (unique, sparse, ...), as
        # Document.ensure_indexes() would pass them, so the indexes are the same either way.
        for index in self.schema.indexes:
            self._coll.create_index(list(index.fields), **index.options)

    def _query(self, filter: Filter, sort: Sort = ()) -> dict[str, Any]:
        self.schema.check_query(filter, sort)  # the same rules as SQLite: code runs on both
        return normalize(dict(filter))

    def insert(self, doc: Doc) -> Doc:
        stored = self.schema.prepare(doc, version=1)
        try:
            self._coll.insert_one(copy.deepcopy(stored))
        except DuplicateKeyError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc
        return stored

    def get(self, doc_id: str) -> Doc | None:
        return self._coll.find_one({"_id": doc_id})

    def replace(self, doc: Doc, expected_version: int) -> Doc:
        stored = self.schema.prepare(doc, version=expected_version + 1)
        try:
            result = self._coll.replace_one(
                {"_id": stored["_id"], "version": expected_version}, copy.deepcopy(stored)
            )
        except DuplicateKeyError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc
        if result.matched_count == 0:
            raise VersionConflict(f"{self.name}/{stored['_id']}: not at version {expected_version}")
        return stored

    def update_fields(self, doc_id: str, expected_version: int, set_fields: Mapping[str, Any]) -> None:
        changes = self.schema.prepare_fields(set_fields)
        try:
            result = self._coll.update_one({"_id": doc_id, "version": expected_version},
                                           {"$set": {**changes, "version": expected_version + 1}})
        except DuplicateKeyError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc
        if result.matched_count == 0:
            raise VersionConflict(f"{self.name}/{doc_id}: not at version {expected_version}")

    def find(self, filter: Filter, sort: Sort = (), limit: int | None = None) -> list[Doc]:
        query = self._query(filter, sort)
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        if limit == 0:  # pymongo reads limit=0 as "no limit"
            return []
        return list(self._coll.find(query, sort=list(sort) or None, limit=limit or 0))

    def count(self, filter: Filter) -> int:
        return self._coll.count_documents(self._query(filter))

    def claim(self, filter: Filter, set_fields: Mapping[str, Any], sort: Sort = ()) -> Doc | None:
        update: dict[str, Any] = {"$inc": {"version": 1}}
        changes = self.schema.prepare_fields(set_fields)
        if changes:
            update["$set"] = changes
        try:
            return self._coll.find_one_and_update(
                self._query(filter, sort), update, sort=list(sort) or None,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc

    def pull(self, doc_id: str, field: str, key: str, values: Sequence[Any]) -> None:
        self.schema.check_array(field)
        self._coll.update_one(
            {"_id": doc_id},
            {"$pull": {field: {key: {"$in": normalize(list(values))}}}, "$inc": {"version": 1}},
        )

    def delete(self, doc_id: str) -> bool:
        return self._coll.delete_one({"_id": doc_id}).deleted_count > 0


class MongoStore:
    def __init__(self, uri: str, db_name: str | None = None, client_class: type | None = None):
        client_class = client_class or pymongo.MongoClient
        # tz_aware: datetimes come back as UTC-aware, as from the SQLite backend.
        self._client = client_class(uri, tz_aware=True, tzinfo=UTC)
        self._db = self._client.get_database(db_name or parse_uri(uri).get("database") or DEFAULT_DB)
        self._counters = self._db.get_collection(COUNTERS)
        self._collections: dict[type[Document], MongoCollection] = {}
        self._lock = threading.Lock()  # index creation once per collection, even under threads

    def collection(self, schema: type[Document]) -> MongoCollection:
        coll = self._collections.get(schema)
        if coll is None:
            with self._lock:
                coll = self._collections.get(schema)
                if coll is None:
                    info = schema_of(schema)
                    coll = MongoCollection(self._db.get_collection(info.name), info)
                    coll.create_indexes()
                    self._collections[schema] = coll
        return coll

    @contextmanager
    def together(self) -> Iterator[None]:
        yield  # each write on its own, in order (see the port)

    def next_value(self, counter: str) -> int:
        doc = self._counters.find_one_and_update(
            {"_id": counter}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return doc["value"]

    def close(self) -> None:
        self._client.close()
