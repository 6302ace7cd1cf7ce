"""Shared fixtures of the motcua kernel tests (one section per area)."""

from __future__ import annotations

import uuid

import mongomock
import pytest

from motcua.store import MongoStore, SqliteStore
from motcua.store.memory import MemoryStore

# ---------------------------------------------------------------------------------------------
# Persistence port (motcua.store): `store` runs a test once per backend.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path):
    store = SqliteStore(tmp_path / "store.sqlite3")
    yield store
    store.close()


@pytest.fixture
def mongo_store():
    # A fresh database name: mongomock clients may share one in-memory server.
    db_name = f"t{uuid.uuid4().hex}"
    store = MongoStore("mongodb://localhost", db_name=db_name, client_class=mongomock.MongoClient)
    yield store
    store.close()


@pytest.fixture
def memory_store():
    """The in-memory fake the service-layer tests use: it must keep the same contract."""
    return MemoryStore()


@pytest.fixture(params=["sqlite", "mongo", "memory"])
def store(request):
    return request.getfixturevalue(f"{request.param}_store")
