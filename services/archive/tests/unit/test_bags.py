"""Packages are BagIt bags the bagit validator accepts, byte-for-byte reproducible, and a
tampered one the validator refuses."""

import hashlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import bagit
import pytest

from archive.adapters.bags import BAG_PREFIX, build_package, remove_abandoned_bags, unpack, validate_packed
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


# -- packages abandoned mid-build ------------------------------------------------------------------

_BUILDER = """
import sys
from archive.adapters.bags import build_package
sys.path.insert(0, sys.argv[2])
from test_bags import spec

def read(file):
    print("building", flush=True)
    sys.stdin.readline()  # until killed
    return [b""]

with build_package(spec(), read, workdir=sys.argv[1]):
    pass
"""


def test_a_package_whose_builder_was_killed_is_removed_and_a_live_build_is_left_alone(tmp_path):
    builder = subprocess.Popen([sys.executable, "-c", _BUILDER, str(tmp_path), str(Path(__file__).parent)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert builder.stdout.readline() == "building\n"
        (dead,) = tmp_path.glob(BAG_PREFIX + "*")
        assert remove_abandoned_bags(tmp_path) == [] and dead.exists()  # its builder is alive
        builder.kill()
        builder.wait()
    finally:
        if builder.poll() is None:
            builder.kill()
    fresh = tmp_path / f"{BAG_PREFIX}fresh"  # just made by a live builder that has not locked it yet
    fresh.mkdir()
    stale = tmp_path / f"{BAG_PREFIX}stale"  # left before its lock was taken, long ago
    stale.mkdir()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    sweeps = []

    def read_while_sweeping(file):  # a sweep while this process builds a package of its own
        sweeps.append(sorted(remove_abandoned_bags(tmp_path)))
        return read(file)

    with build_package(spec(), read_while_sweeping, workdir=str(tmp_path)) as built:
        assert built.path.exists()  # this process's own build, in progress, was left alone
    assert sweeps[0] == sorted([dead.name, stale.name]) and not any(sweeps[1:])
    assert not dead.exists() and not stale.exists() and fresh.exists()
    assert [p.name for p in tmp_path.glob(BAG_PREFIX + "*")] == [fresh.name]
