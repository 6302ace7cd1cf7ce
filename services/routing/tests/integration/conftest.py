"""Fixtures of routing's integration tests: each test runs on both store backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from motcua.store import MongoStore, SqliteStore, Store
from motcua.testing import AtomicMongomockClient


@pytest.fixture(params=["sqlite", "mongo"])
def store(request, tmp_path) -> Iterator[Store]:
    """The embedded SQLite store, and MongoDB through mongoengine on mongomock (each call atomic, as
    on a MongoDB server: tests race writers on one instance)."""
    if request.param == "sqlite":
        store: Store = SqliteStore(tmp_path / "routing.sqlite3")
    else:
        store = MongoStore("mongodb://localhost", db_name=f"routing{uuid.uuid4().hex}",
                           client_class=AtomicMongomockClient)
    yield store
    store.close()
