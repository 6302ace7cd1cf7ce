"""Builds an archival package as a BagIt bag (RFC 8493) packed in a tar file, with the bagit
library, and checks it with the same library's validator before it is stored."""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import bagit

from archive.domain.package import PackageFile


def build_bag(name: str, files: list[PackageFile], read: Callable[[PackageFile], bytes],
              info: dict[str, str]) -> tuple[bytes, str]:
    """The packed bag and the SHA-256 of its manifest-sha256.txt."""
    with tempfile.TemporaryDirectory(prefix="motcua-bag-") as tmp:
        root = Path(tmp) / name
        root.mkdir()
        for file in files:
            target = root / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read(file))
        bag = bagit.make_bag(str(root), bag_info=info, checksums=["sha256"])
        bag.validate()  # checks every payload file against the manifest
        manifest = (root / "manifest-sha256.txt").read_bytes()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(root, arcname=name)
        return buffer.getvalue(), hashlib.sha256(manifest).hexdigest()
