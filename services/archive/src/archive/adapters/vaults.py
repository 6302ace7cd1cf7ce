"""A write-once copy of the archive: one S3 bucket created with Object Lock (versioned), on the
platform's S3 endpoint or its own. Every package version is written with a retention (GOVERNANCE
or COMPLIANCE) the S3 server enforces: it refuses to delete the version or shorten its lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from motcua.objects import ObjectMissing, ObjectStore

PACKAGE_MEDIA_TYPE = "application/x-tar"


class S3Vault:
    """archive.application.ports.Vault on an ObjectStore."""

    def __init__(self, name: str, store: ObjectStore, mode: str = "GOVERNANCE"):
        if mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise ValueError(f"lock mode must be GOVERNANCE or COMPLIANCE, not {mode!r}")
        self.name = name
        self.store = store
        self.mode = mode

    def ensure(self) -> None:
        self.store.ensure_locked_bucket()

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "endpoint": self.store.endpoint, "bucket": self.store.bucket}

    def find(self, key: str, sha256: str) -> str | None:
        for version in self.store.versions(key):
            if version.is_delete_marker:
                continue
            with contextlib.suppress(ObjectMissing):
                if self.store.hash_version(key, version.version_id)[0] == sha256:
                    return version.version_id
        return None

    def write(self, key: str, path: Path, sha256: str, size: int, retain_until: datetime) -> str:
        with open(path, "rb") as data:
            return self.store.put_locked(key, data, size, sha256, PACKAGE_MEDIA_TYPE, retain_until, self.mode)

    def digest(self, key: str, version_id: str) -> str | None:
        try:
            return self.store.hash_version(key, version_id)[0]
        except ObjectMissing:
            return None

    def latest(self, key: str) -> str | None:
        for version in self.store.versions(key):
            if version.is_latest:
                return None if version.is_delete_marker else version.version_id
        return None

    def read(self, key: str, version_id: str) -> Iterator[bytes]:
        return self.store.open_version(key, version_id)

    def hold(self, key: str, version_id: str, on: bool) -> None:
        self.store.set_legal_hold(key, version_id, on)

    def url(self, key: str, version_id: str, expires: timedelta) -> str:
        return self.store.presigned_get_version(key, version_id, expires)
