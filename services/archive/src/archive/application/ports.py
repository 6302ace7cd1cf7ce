"""What archive's use cases need from the outside, as ports; the adapters implement them and the
entrypoints wire them (application code never imports adapters)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager as ContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from archive.domain.package import BagSpec, BuiltPackage, PackageFile, SignatureCheck

T = TypeVar("T")
Offload = Callable[..., Any]  # eventlet.tpool.execute in the worker: runs a blocking call off the hub


def direct(function: Callable[..., T], *args: Any) -> T:
    return function(*args)


# Builds the packed bag of a spec, reading each file's chunks with the given reader.
Packer = Callable[[BagSpec, Callable[[PackageFile], Iterable[bytes]]], ContextManager[BuiltPackage]]

# Validates the signatures of one PDF of the package, given its chunks (the signing api's
# ValidateDocument). Raises motcua.errors.Unavailable while the validator cannot answer (the
# archiving is retried): a package records the verdict, never a guess.
CheckSignatures = Callable[[PackageFile, Iterable[bytes]], SignatureCheck]


class Vault(Protocol):
    """One write-once copy (an S3 bucket with Object Lock, on its own endpoint or not)."""

    name: str  # "primary" | "copy"

    def describe(self) -> dict[str, str]:
        """{"name", "endpoint", "bucket"} (recorded in the ledger)."""

    def find(self, key: str, sha256: str) -> str | None:
        """The id of a stored version of ``key`` whose bytes hash to ``sha256`` (a retry finds
        what an earlier attempt wrote), else None."""

    def write(self, key: str, path: Path, sha256: str, size: int, retain_until: datetime) -> str:
        """Store the file under a lock until ``retain_until``; the new version's id."""

    def digest(self, key: str, version_id: str) -> str | None:
        """SHA-256 of a version read now; None when the version is gone."""

    def latest(self, key: str) -> str | None:
        """The version a plain GET of ``key`` answers (None when deleted or delete-marked)."""

    def read(self, key: str, version_id: str) -> Iterator[bytes]:
        """A version's bytes, unverified."""

    def hold(self, key: str, version_id: str, on: bool) -> None:
        """Set or clear the legal hold of a version."""

    def url(self, key: str, version_id: str, expires: timedelta) -> str:
        """A presigned GET of the version."""


class Timestamper(Protocol):
    """An RFC 3161 time-stamping authority."""

    url: str

    def stamp(self, digest: bytes) -> bytes:
        """The DER timestamp token over a SHA-256 digest."""

    def check(self, token: bytes, digest: bytes) -> str | None:
        """Why the token does not cover ``digest`` (None when it does)."""


@contextlib.contextmanager
def offloaded(offload: Offload, manager: ContextManager[T]) -> Iterator[T]:
    """Enter and exit a blocking context manager off the hub."""
    value = offload(manager.__enter__)
    try:
        yield value
    finally:
        offload(manager.__exit__, None, None, None)
