"""Kill -9 a process in the middle of the work and count that nothing was lost or done twice."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import grpc
import pytest
from motcua_dev.devstack import Stack
from motcua_dev.harness import JOURNEY, Platform, journeys_complete, sample_request, submit_all

pytestmark = pytest.mark.reliability

DISTRICTS = ("bim-son", "ba-thuoc")
KILL_BEFORE_PUBLISH = Path(__file__).with_name("kill_before_publish.py")  # the api, with the fault injected


def assert_exactly_once(platform: Platform, codes: set[str]) -> None:
    from archive.adapters.records import PackageRecord
    from intake.adapters.records import DossierRecord
    from routing.adapters.instances import InstanceRecord
    from signing.adapters.records import SigningRecord

    for code in codes:
        assert platform.events.distinct_types(code) == JOURNEY, code
        assert platform.count("archive", PackageRecord, {"code": code}) == 1, code
        assert platform.count("routing", InstanceRecord, {"code": code}) == 1, code
        assert platform.count("intake", DossierRecord, {"code": code}) == 1, code
    signed = sum(platform.count("signing", SigningRecord, {"area": d}) for d in DISTRICTS)
    assert signed == platform.count("routing", InstanceRecord)


def test_routing_worker_killed_with_fifty_dossiers_in_flight(platform: Platform):
    started = platform.events.count("vn.motcua.dossier.assigned.v1")
    answers = submit_all(platform.intake_address, [sample_request(DISTRICTS[n % 2], n, documents=1)
                                                   for n in range(50)])
    codes = {a.code for a in answers}
    assert len(codes) == 50

    # Kill routing once it is busy with this batch, but long before it is through.
    assert platform.events.wait_until(
        lambda _: platform.events.count("vn.motcua.dossier.assigned.v1") >= started + 10, timeout=60)
    platform.stack.kill("routing-worker")
    in_flight = 50 - sum(1 for c in codes if "vn.motcua.dossier.returned.v1" in platform.events.distinct_types(c))
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
            assert _dies(faulty, "intake-api-faulty"), "the injected fault did not kill the api"
            faulty.restart("intake-api-faulty")
            faulty.wait_ready(timeout=60)

    retried = submit_all(platform.intake_address, requests)
    codes = {answer.code for answer in retried}
    assert len(codes) == 3
    assert platform.events.wait_until(journeys_complete(codes), timeout=180), platform.progress(codes)
    assert_exactly_once(platform, codes)


def _dies(stack: Stack, name: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while stack.alive(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
