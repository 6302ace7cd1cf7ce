"""Archive's test fixtures: an in-memory write-once vault (the fake of archive.application.ports.Vault)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta
from pathlib import Path

import pytest

_ids = itertools.count(1)


class MemoryVault:
    """Versioned, write-once storage in memory: versions are never changed or removed by the
    archive; ``tamper`` plays the attacker (a new version over the key, or a version gone)."""

    def __init__(self, name: str):
        self.name = name
        self.versions: dict[str, list[tuple[str, bytes, object]]] = {}  # key -> [(version, data, retain_until)]
        self.corrupt_writes = False
        self.writes = 0

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "endpoint": "memory", "bucket": f"mem-{self.name}"}

    def find(self, key, sha256):
        for version, data, _ in reversed(self.versions.get(key, [])):
            if data is not None and hashlib.sha256(data).hexdigest() == sha256:
                return version
        return None

    def write(self, key, path: Path, sha256, size, retain_until):
        data = Path(path).read_bytes()
        if self.corrupt_writes:
            data = data[:-1] + bytes([data[-1] ^ 1])
        self.writes += 1
        return self._add(key, data, retain_until)

    def _add(self, key, data, retain_until=None):
        version = f"v{next(_ids)}"
        self.versions.setdefault(key, []).append((version, data, retain_until))
        return version

    def _data(self, key, version_id):
        return next((d for v, d, _ in self.versions.get(key, []) if v == version_id), None)

    def digest(self, key, version_id):
        data = self._data(key, version_id)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def latest(self, key):
        versions = self.versions.get(key, [])
        return versions[-1][0] if versions and versions[-1][1] is not None else None

    def read(self, key, version_id):
        return iter([self._data(key, version_id)])

    def hold(self, key, version_id, on):
        self.held = getattr(self, "held", set()) | ({(key, version_id)} if on else set())

    def url(self, key, version_id, expires: timedelta):
        return f"memory://{self.name}/{key}?versionId={version_id}"

    # the attacker
    def overwrite(self, key, data: bytes) -> str:
        return self._add(key, data)

    def delete_marker(self, key) -> str:
        return self._add(key, None)

    def only(self, key) -> bytes:
        (_, data, _), = self.versions[key]
        return data


@pytest.fixture
def memory_vaults():
    return [MemoryVault("primary"), MemoryVault("copy")]


@pytest.fixture(scope="session")
def memory_vault_class():
    return MemoryVault
