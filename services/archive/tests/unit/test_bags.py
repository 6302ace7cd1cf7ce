"""Packages are BagIt bags the bagit validator accepts, and a tampered one it refuses."""

import hashlib
import io
import tarfile

import bagit
import pytest

from archive.adapters.bags import build_bag
from archive.domain.package import package_files

CONTENT = {"aa": b"%PDF-1.4 submitted\n%%EOF\n", "cc": b"%PDF-1.4 signed result\n%%EOF\n"}


def files():
    def ref(key):
        return {"key": key, "sha256": hashlib.sha256(CONTENT[key]).hexdigest(), "size": len(CONTENT[key]),
                "media_type": "application/pdf"}
    return package_files([ref("aa")], ref("cc"))


def unpack(packed: bytes, into) -> bagit.Bag:
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        tar.extractall(into, filter="data")
    return bagit.Bag(str(into / "X-1"))


def test_the_bag_validates_and_its_manifest_checksum_is_reported(tmp_path):
    packed, manifest_sha256 = build_bag("X-1", files(), lambda f: CONTENT[f.key], {"External-Identifier": "X-1"})
    bag = unpack(packed, tmp_path)
    bag.validate()
    assert sorted(bag.payload_files()) == sorted(f"data/{f.path}" for f in files())
    manifest = (tmp_path / "X-1" / "manifest-sha256.txt").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == manifest_sha256
    assert bag.info["External-Identifier"] == "X-1"


def test_a_tampered_bag_fails_validation(tmp_path):
    packed, _ = build_bag("X-1", files(), lambda f: CONTENT[f.key], {})
    bag = unpack(packed, tmp_path)
    (tmp_path / "X-1" / "data" / files()[0].path).write_bytes(b"changed")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(tmp_path / "X-1")).validate()
    assert bag is not None
