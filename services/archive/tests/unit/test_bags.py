"""Packages are BagIt bags the bagit validator accepts, byte-for-byte reproducible, and a
tampered one the validator refuses."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import bagit
import pytest

from archive.adapters.bags import build_package, unpack, validate_packed
from archive.domain.package import BagSpec, package_files

CONTENT = {"aa": b"%PDF-1.4 submitted\n%%EOF\n", "cc": b"%PDF-1.4 signed result\n%%EOF\n"}
T = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def spec(name="X-1", info=None):
    def ref(key):
        return {"key": key, "sha256": hashlib.sha256(CONTENT[key]).hexdigest(), "size": len(CONTENT[key]),
                "media_type": "application/pdf"}
    files = tuple(package_files([ref("aa")], ref("cc")))
    return BagSpec(name, files, info or {"External-Identifier": name, "Bagging-Date": "2026-11-25"}, T,
                   lambda pages: {"data/metadata/decree30.json": {"pages": dict(pages)}})


def read(file):
    return [CONTENT[file.key]]


def test_the_bag_validates_and_the_same_dossier_gives_the_same_bytes(tmp_path):
    with build_package(spec(), read) as first:
        data = first.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == first.sha256 and len(data) == first.size
        bag = bagit.Bag(str(unpack(first.path, tmp_path)))
        bag.validate()
        validate_packed(first.path)
    with build_package(spec(), read) as second:  # another time, another temporary directory
        assert second.path.read_bytes() == data and second.sha256 == first.sha256
    assert sorted(bag.payload_files()) == sorted([f"data/{f.path}" for f in spec().files]
                                                 + ["data/metadata/decree30.json"])
    assert bag.info["External-Identifier"] == "X-1"
    manifest = (tmp_path / "X-1" / "manifest-sha256.txt").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == first.manifest_sha256


def test_a_tampered_bag_fails_validation(tmp_path):
    with build_package(spec(), read) as built:
        root = unpack(built.path, tmp_path)
    (root / "data" / spec().files[0].path).write_bytes(b"changed")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(root)).validate()


def test_the_temporary_package_is_gone_after_the_build():
    with build_package(spec(), read) as built:
        path = Path(built.path)
        assert path.exists()
    assert not path.exists()
