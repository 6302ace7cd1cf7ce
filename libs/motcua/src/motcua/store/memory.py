"""An in-memory backend of the persistence port, for service-layer tests that run in milliseconds.

It keeps the port's promises that use cases rely on — schema validation (the same
:class:`~motcua.store.schema.Schema` as the real backends), versions and ``VersionConflict``,
unique indexes and ``DuplicateKey``, index-bound queries only, documents handed out as copies — in
one process, under one lock. It is not durable and not shared between processes: the contract
suite and the integration tests run the real backends (SQLite, MongoDB).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from mongoengine import Document

from motcua.store.port import Doc, DuplicateKey, Filter, Sort, VersionConflict
from motcua.store.schema import Schema, conditions, normalize, schema_of

_MISSING = object()


def _matches(doc: Doc, filter: Filter) -> bool:
    for name, cond in filter.items():
        value = doc.get(name)
        for op, operand in conditions(cond).items():
            operand = normalize(operand)
            if op == "$eq" and value != operand:
                return False
            if op == "$ne" and value == operand:
                return False
            if op == "$in" and value not in list(operand):
                return False
            if op in ("$lt", "$lte", "$gt", "$gte"):
                if value is None:
                    return False
                if not {"$lt": value < operand, "$lte": value <= operand,
                        "$gt": value > operand, "$gte": value >= operand}[op]:
                    return False
    return True


def _sorted(docs: list[Doc], sort: Sort) -> list[Doc]:
    for name, direction in reversed(list(sort)):
        present = [d for d in docs if d.get(name) is not None]
        absent = [d for d in docs if d.get(name) is None]  # None sorts first ascending, as MongoDB does
        present.sort(key=lambda d: d[name], reverse=direction < 0)
        docs = absent + present if direction > 0 else present + absent
    return docs


class MemoryCollection:
    def __init__(self, schema: Schema, lock: threading.RLock):
        self.schema = schema
        self.name = schema.name
        self._docs: dict[str, Doc] = {}
        self._lock = lock

    def _check_unique(self, doc: Doc) -> None:
        for index in self.schema.indexes:
            if not index.unique:
                continue
            key = tuple(doc.get(f) for f, _ in index.fields)
            if index.sparse and all(v is None for v in key):
                continue
            for other in self._docs.values():
                if other["_id"] != doc["_id"] and tuple(other.get(f) for f, _ in index.fields) == key:
                    raise DuplicateKey(f"{self.name}: {dict(zip([f for f, _ in index.fields], key, strict=True))}")

    def insert(self, doc: Doc) -> Doc:
        stored = self.schema.prepare(doc, version=1)
        with self._lock:
            if stored["_id"] in self._docs:
                raise DuplicateKey(f"{self.name}: _id {stored['_id']!r}")
            self._check_unique(stored)
            self._docs[stored["_id"]] = stored
        return copy.deepcopy(stored)

    def get(self, doc_id: str) -> Doc | None:
        with self._lock:
            doc = self._docs.get(doc_id)
            return copy.deepcopy(doc) if doc is not None else None

    def replace(self, doc: Doc, expected_version: int) -> Doc:
        stored = self.schema.prepare(doc, version=expected_version + 1)
        with self._lock:
            current = self._docs.get(stored["_id"])
            if current is None or current["version"] != expected_version:
                raise VersionConflict(f"{self.name}: {stored['_id']!r} is not at version {expected_version}")
            self._check_unique(stored)
            self._docs[stored["_id"]] = stored
        return copy.deepcopy(stored)

    def update_fields(self, doc_id: str, expected_version: int, set_fields: Mapping[str, Any]) -> None:
        values = self.schema.prepare_fields(set_fields)
        with self._lock:
            current = self._docs.get(doc_id)
            if current is None or current["version"] != expected_version:
                raise VersionConflict(f"{self.name}: {doc_id!r} is not at version {expected_version}")
            changed = {**current, **values, "version": expected_version + 1}
            self._check_unique(changed)
            self._docs[doc_id] = changed

    def find(self, filter: Filter, sort: Sort = (), limit: int | None = None) -> list[Doc]:
        self.schema.check_query(filter, sort)
        with self._lock:
            found = _sorted([d for d in self._docs.values() if _matches(d, filter)], sort)
            return copy.deepcopy(found[:limit] if limit is not None else found)

    def count(self, filter: Filter) -> int:
        self.schema.check_query(filter)
        with self._lock:
            return sum(1 for d in self._docs.values() if _matches(d, filter))

    def claim(self, filter: Filter, set_fields: Mapping[str, Any], sort: Sort = ()) -> Doc | None:
        self.schema.check_query(filter, sort)
        values = self.schema.prepare_fields(set_fields)
        with self._lock:
            found = _sorted([d for d in self._docs.values() if _matches(d, filter)], sort)
            if not found:
                return None
            doc = {**found[0], **values, "version": found[0]["version"] + 1}
            self._docs[doc["_id"]] = doc
            return copy.deepcopy(doc)

    def pull(self, doc_id: str, field: str, key: str, values: Sequence[Any]) -> None:
        self.schema.check_array(field)
        with self._lock:
            current = self._docs.get(doc_id)
            if current is None:
                return
            gone = set(values)
            self._docs[doc_id] = {**current, field: [i for i in current.get(field) or [] if i.get(key) not in gone],
                                  "version": current["version"] + 1}

    def delete(self, doc_id: str) -> bool:
        with self._lock:
            return self._docs.pop(doc_id, _MISSING) is not _MISSING


class MemoryStore:
    """The port in memory: collections by schema, counters."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._collections: dict[str, MemoryCollection] = {}
        self._counters: dict[str, int] = {}

    def collection(self, schema: type[Document]) -> MemoryCollection:
        resolved = schema_of(schema)
        with self._lock:
            if resolved.name not in self._collections:
                self._collections[resolved.name] = MemoryCollection(resolved, self._lock)
            return self._collections[resolved.name]

    @contextmanager
    def together(self) -> Iterator[None]:
        with self._lock:  # re-entrant: the block's writes take it again
            yield

    def next_value(self, counter: str) -> int:
        with self._lock:
            self._counters[counter] = self._counters.get(counter, 0) + 1
            return self._counters[counter]

    def close(self) -> None:
        pass
