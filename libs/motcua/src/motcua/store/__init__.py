"""The persistence port and its backends; services call :func:`open_store` once at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .mongo import MongoStore
from .port import (
    Collection,
    Doc,
    DuplicateKey,
    Filter,
    InvalidDocument,
    Sort,
    Store,
    StoreError,
    VersionConflict,
)
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from motcua.settings import PlatformSettings

__all__ = [
    "Collection",
    "Doc",
    "DuplicateKey",
    "Filter",
    "InvalidDocument",
    "MongoStore",
    "Sort",
    "SqliteStore",
    "Store",
    "StoreError",
    "VersionConflict",
    "open_store",
]


def open_store(settings: PlatformSettings) -> Store:
    """MongoDB when ``settings.mongo_uri`` is set, else the embedded SQLite file of the service."""
    if settings.mongo_uri:
        return MongoStore(settings.mongo_uri)
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)
