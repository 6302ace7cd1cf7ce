"""Kill -9 a process in the middle of the work and count that nothing was lost or done twice."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import grpc
import pytest
from motcua_dev.devstack import Stack, eventually
from motcua_dev.harness import JOURNEY, Platform, journeys_complete, sample_request, submit_all

pytestmark = pytest.mark.reliability

DISTRICTS = ("bim-son", "ba-thuoc")
IN_FLIGHT = 24  # dossiers submitted at once; routing is killed after the tenth is assigned
KILL_BEFORE_PUBLISH = Path(__file__).with_name("kill_before_publish.py")  # the api, with the fault injected
KILL_ARCHIVE_WORKER = Path(__file__).with_name("kill_archive_worker.py")  # archive's worker, faults injected


def assert_exactly_once(platform: Platform, codes: set[str]) -> None:
    from archive.adapters.records import LedgerRecord
    from intake.adapters.records import DossierRecord
    from routing.adapters.instances import InstanceRecord
    from signing.adapters.records import SigningRecord

    for code in codes:
        assert platform.events.distinct_types(code) == JOURNEY, code
        assert platform.count("archive", LedgerRecord, {"code": code}) == 1, code
        assert platform.count("routing", InstanceRecord, {"code": code}) == 1, code
        assert platform.count("intake", DossierRecord, {"code": code}) == 1, code
    signed = sum(platform.count("signing", SigningRecord, {"area": d}) for d in DISTRICTS)
    assert signed == platform.count("routing", InstanceRecord)


def test_routing_worker_killed_with_dossiers_in_flight(platform: Platform):
    started = platform.events.count("vn.motcua.dossier.assigned.v1")
    answers = submit_all(platform.intake_address, [sample_request(DISTRICTS[n % 2], n, documents=1)
                                                   for n in range(IN_FLIGHT)])
    codes = {a.code for a in answers}
    assert len(codes) == IN_FLIGHT

    # Kill routing once it is busy with this batch, but long before it is through.
    assert platform.events.wait_until(
        lambda _: platform.events.count("vn.motcua.dossier.assigned.v1") >= started + 10, timeout=60)
    platform.stack.kill("routing-worker")
    returned = sum(1 for c in codes if "vn.motcua.dossier.returned.v1" in platform.events.distinct_types(c))
    in_flight = IN_FLIGHT - returned
    assert in_flight > 0, "the batch finished before routing was killed: nothing was tested"
    time.sleep(1)
    platform.stack.restart("routing-worker")
    platform.stack.wait_ready(timeout=60, names=["routing-worker"])

    assert platform.events.wait_until(journeys_complete(codes), timeout=300), platform.progress(codes)
    assert_exactly_once(platform, codes)


def test_signing_worker_killed_mid_batch_signs_each_document_once(platform: Platform):
    """kill -9 of the signing worker (its pool of signing processes goes with it) while a batch is
    being signed: after the restart every dossier's result is signed once — one signing record and
    one document.signed per dossier, the whole journey once."""
    from signing.adapters.records import SigningRecord

    signed_before = platform.events.count("vn.motcua.document.signed.v1")
    answers = submit_all(platform.intake_address, [sample_request(DISTRICTS[n % 2], 700 + n, documents=1)
                                                   for n in range(16)])
    codes = {a.code for a in answers}
    assert platform.events.wait_until(
        lambda _: platform.events.count("vn.motcua.document.signed.v1") >= signed_before + 3, timeout=180)
    platform.stack.kill("signing-worker")
    unsigned = [c for c in codes if "vn.motcua.document.signed.v1" not in platform.events.distinct_types(c)]
    assert unsigned, "the batch was signed before the worker was killed: nothing was tested"
    time.sleep(1)
    platform.stack.restart("signing-worker")
    platform.stack.wait_ready(timeout=90, names=["signing-worker"])

    assert platform.events.wait_until(journeys_complete(codes), timeout=300), platform.progress(codes)
    assert_exactly_once(platform, codes)
    for code in codes:
        assert platform.count("signing", SigningRecord, {"code": code}) == 1, code


def test_intake_api_killed_between_commit_and_publish(platform: Platform, tmp_path):
    """An api process that dies right after committing a dossier, before publishing its events
    (the fault is injected by a wrapper that patches the outbox in that process, then runs the
    real entrypoint): the caller sees UNAVAILABLE, the worker's relay publishes the pending events,
    and the retried request gets the first answer."""
    spec, address = platform.extra_api("intake", "intake-api-faulty", {})
    spec = dataclasses.replace(spec, argv=[sys.executable, str(KILL_BEFORE_PUBLISH), "intake"])
    requests = [sample_request(DISTRICTS[n % 2], 500 + n, documents=1) for n in range(3)]
    with Stack([spec], tmp_path / "logs") as faulty:
        faulty.wait_ready(timeout=60)
        for request in requests:
            with pytest.raises(grpc.RpcError) as error:
                submit_all(address, [request])
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert eventually(lambda: not faulty.alive("intake-api-faulty"), 15, 0.05), \
                "the injected fault did not kill the api"
            faulty.restart("intake-api-faulty")
            faulty.wait_ready(timeout=60)

    retried = submit_all(platform.intake_address, requests)
    codes = {answer.code for answer in retried}
    assert len(codes) == 3
    assert platform.events.wait_until(journeys_complete(codes), timeout=180), platform.progress(codes)
    assert_exactly_once(platform, codes)


def test_archive_worker_killed_between_the_copies_and_before_the_ledger_entry(platform: Platform, s3_endpoint,
                                                                              tmp_path):
    """kill -9 of the archive worker after the first copy, and again after both copies before the
    ledger entry, for every dossier: each ends with exactly one ledger entry and two verified
    copies, one version each (the rebuilt package has the same bytes and key: no orphan)."""
    import os

    from motcua_dev.platform import worker_spec

    from archive.adapters.records import LedgerRecord

    platform.stack.kill("archive-worker")
    spec = worker_spec("archive", {**platform.env, "MOTCUA_TEST_KILL_DIR": str(tmp_path / "kills")},
                       name="archive-worker-faulty")
    spec = dataclasses.replace(spec, argv=[sys.executable, str(KILL_ARCHIVE_WORKER)])
    answers = submit_all(platform.intake_address, [sample_request(DISTRICTS[n % 2], 700 + n, documents=1)
                                                   for n in range(3)])
    codes = {a.code for a in answers}
    kills, done = 0, journeys_complete(codes)
    with Stack([spec], tmp_path / "logs") as faulty:
        faulty.wait_ready(timeout=60)
        deadline = time.monotonic() + 300
        while not done(platform.events.events) and time.monotonic() < deadline:
            if not faulty.alive("archive-worker-faulty"):
                kills += 1
                faulty.restart("archive-worker-faulty")
                faulty.wait_ready(timeout=60)
            time.sleep(0.2)
        assert done(platform.events.events), platform.progress(codes) + faulty.tail("archive-worker-faulty", 30)
    platform.stack.restart("archive-worker")
    platform.stack.wait_ready(timeout=60, names=["archive-worker"])
    assert kills == 2 * len(codes) == len(os.listdir(tmp_path / "kills"))
    assert_exactly_once(platform, codes)
    from motcua.store.sqlite import SqliteStore

    store = SqliteStore(platform.data_dir / "archive.sqlite3")
    try:
        entries = [store.collection(LedgerRecord).find({"code": code})[0] for code in codes]
    finally:
        store.close()
    for entry in entries:
        for copy in entry["copies"]:
            vault = s3_endpoint.store(copy["bucket"])
            versions = vault.versions(copy["key"])
            assert [v.version_id for v in versions] == [copy["version_id"]], (entry["code"], copy["name"])
            assert vault.hash_version(copy["key"], copy["version_id"])[0] == entry["package_sha256"]

