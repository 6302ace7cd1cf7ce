"""Shared fixtures of the motcua kernel tests (one section per area)."""

from __future__ import annotations

import pytest

from motcua.store.memory import MemoryStore

# ---------------------------------------------------------------------------------------------
# Persistence port (motcua.store): `store` runs a test once per backend.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def memory_store():
    """The in-memory fake the service-layer tests use: it must keep the same contract."""
    return MemoryStore()


@pytest.fixture(params=["sqlite", "mongo", "memory"])
def store(request):
    return request.getfixturevalue(f"{request.param}_store")
