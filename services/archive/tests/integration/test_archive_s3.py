"""Archive against SeaweedFS (its S3 gateway enforces Object Lock): write-once buckets, locked
versions the server refuses to delete or unlock, legal hold, multipart packages, two verified
copies, a flipped byte found and repaired by the fixity sweep, presigned version downloads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from minio.commonconfig import GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention
from motcua_dev.testing import memory_units_of_work

from archive.adapters.bags import build_package
from archive.adapters.records import DossierLifeRecord, LedgerRecord, LedgerStampRecord
from archive.adapters.vaults import S3Vault
from archive.application.archiving import ArchiveDossier, ArchivePolicy, Archivist
from archive.application.fixity import Fixity
from archive.application.ledger import Ledger

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)


def _drop_locked(store) -> None:
    """Test clean-up: every version removed bypassing GOVERNANCE (allowed to the root identity)."""
    with contextlib.suppress(Exception):
        for o in store.client.list_objects(store.bucket, recursive=True, include_version=True):
            with contextlib.suppress(Exception):
                store.client.disable_object_legal_hold(store.bucket, o.object_name, o.version_id)
            with contextlib.suppress(Exception):
                store.remove_version(o.object_name, o.version_id, bypass_governance=True)
        store.client.remove_bucket(store.bucket)


@pytest.fixture(scope="module")
def vaults(s3_endpoint):
    made = []
    for name in ("primary", "copy"):
        store = s3_endpoint.store(f"archive-{name}-{uuid.uuid4().hex[:10]}")
        store.part_size = 5 * 1024 * 1024  # S3's smallest part: a 6 MB package goes by multipart
        vault = S3Vault(name, store, "GOVERNANCE")
        vault.ensure()
        vault.ensure()  # idempotent
        made.append(vault)
    yield made
    for vault in made:
        _drop_locked(vault.store)


@pytest.fixture(scope="module")
def archived(vaults, object_store):
    """One dossier archived through the Archivist into the two SeaweedFS vaults."""
    uows, publisher = memory_units_of_work()
    big = b"%PDF-1.7\n" + bytes(range(256)) * (6 * 4096) + b"\n%%EOF"  # ~6 MB: multipart
    submitted = object_store.put_bytes("intake/it", big, "application/pdf").to_dict()
    result = object_store.put_bytes("signing/it", b"%PDF-1.7 ket qua /Type /Page", "application/pdf").to_dict()
    command = ArchiveDossier(dossier_id=f"d-{uuid.uuid4().hex[:8]}", code="000.01.06.H56-261201-0042", area="bim-son",
                             receiving_unit="bim-son", procedure_code="1.001193", documents=(submitted,),
                             result=result, received_at=NOW - timedelta(days=3), returned_at=NOW)
    archivist = Archivist(uows, object_store, vaults, build_package, LedgerRecord, DossierLifeRecord,
                          ArchivePolicy(default_retention="1"))
    archivist(command)
    (entry,) = uows.store.collection(LedgerRecord).find({})
    return uows, publisher, entry


def test_the_s3_server_refuses_to_delete_or_unlock_a_locked_version_and_keeps_it_under_an_overwrite(vaults):
    store = vaults[0].store
    until = NOW + timedelta(days=1)
    key = f"probe/{uuid.uuid4().hex}"
    version = store.put_locked(key, io.BytesIO(b"v1"), 2, "x", "text/plain", until)
    assert store.retention(key, version) == ("GOVERNANCE", until)
    with pytest.raises(S3Error) as refused:
        store.client.remove_object(store.bucket, key, version_id=version)
    assert refused.value.code == "AccessDenied"
    with pytest.raises(S3Error):
        store.client.set_object_retention(store.bucket, key, Retention(GOVERNANCE, until - timedelta(hours=1)),
                                          version_id=version)
    newer = store.put_locked(key, io.BytesIO(b"v2"), 2, "y", "text/plain", until)  # an overwrite ...
    assert newer != version and b"".join(store.open_version(key, version)) == b"v1"  # ... leaves v1 as it was
    store.client.remove_object(store.bucket, key)  # a plain delete only adds a delete marker
    assert b"".join(store.open_version(key, version)) == b"v1"
    assert [v.is_delete_marker for v in store.versions(key)].count(True) == 1


def test_a_bucket_without_object_lock_is_refused_as_an_archive(s3_endpoint):
    from motcua.objects import ObjectStoreError

    plain = s3_endpoint.store(f"plain-{uuid.uuid4().hex[:10]}")
    plain.ensure_bucket()
    try:
        with pytest.raises(ObjectStoreError, match="no Object Lock"):
            S3Vault("primary", plain).ensure()
    finally:
        plain.client.remove_bucket(plain.bucket)


def test_a_package_is_two_verified_locked_copies_a_delete_is_refused_and_legal_hold_holds(vaults, archived):
    uows, publisher, entry = archived
    assert publisher.types() == ["vn.motcua.dossier.archived.v1"]
    assert entry["package_size"] > 6 * 1024 * 1024
    for vault, copy in zip(vaults, entry["copies"], strict=True):
        store = vault.store
        assert copy["bucket"] == store.bucket
        assert vault.digest(copy["key"], copy["version_id"]) == entry["package_sha256"]
        mode, until = store.retention(copy["key"], copy["version_id"])
        assert (mode, until.isoformat()) == ("GOVERNANCE", entry["retain_until"])
        with pytest.raises(S3Error) as refused:  # by the S3 server
            store.client.remove_object(store.bucket, copy["key"], version_id=copy["version_id"])
        assert refused.value.code == "AccessDenied"
        url = vault.url(copy["key"], copy["version_id"], timedelta(minutes=1))
        with urllib.request.urlopen(url) as response:  # noqa: S310 - the test's own S3
            assert hashlib.sha256(response.read()).hexdigest() == entry["package_sha256"]
    book = Ledger(uows, LedgerRecord, LedgerStampRecord)
    book.legal_hold(entry["code"], True, vaults, "inspection 2026/12")
    copy = entry["copies"][1]
    assert vaults[1].store.legal_hold(copy["key"], copy["version_id"])
    with pytest.raises(Exception, match="not removed|AccessDenied|Access Denied"):  # not even bypassing GOVERNANCE
        vaults[1].store.remove_version(copy["key"], copy["version_id"], bypass_governance=True)
    book.legal_hold(entry["code"], False, vaults)
    assert not vaults[1].store.legal_hold(copy["key"], copy["version_id"])


def test_a_flipped_byte_in_one_copy_is_found_and_repaired_by_the_next_sweep(vaults, archived):
    uows, publisher, entry = archived
    copy = entry["copies"][1]
    good = b"".join(vaults[1].read(copy["key"], copy["version_id"]))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    store = vaults[1].store
    # the attacker: a new version of the key (what the lock allows)
    bad = store.client.put_object(store.bucket, copy["key"], io.BytesIO(bytes(flipped)), len(flipped),
                                  part_size=5 * 1024 * 1024).version_id
    fixity = Fixity(uows, vaults, LedgerRecord, clock=lambda: NOW + timedelta(days=60))
    (result,) = fixity.sweep()
    assert result["state"] == "repaired", result
    assert publisher.types()[-1] == "vn.motcua.archive.fixity_failed.v1"
    latest = vaults[1].latest(copy["key"])
    assert latest not in (bad, copy["version_id"]) and vaults[1].digest(copy["key"], latest) == entry["package_sha256"]
    assert vaults[1].digest(copy["key"], bad) != entry["package_sha256"]  # kept for the investigation
    assert store.retention(copy["key"], latest)[0] == "GOVERNANCE"  # the repair is locked too
    (again,) = Fixity(uows, vaults, LedgerRecord, clock=lambda: NOW + timedelta(days=120)).sweep()
    assert again["state"] == "ok"
