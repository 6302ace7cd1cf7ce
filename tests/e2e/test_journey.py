"""A dossier's whole journey through the five services running as processes: submitted by a stock
grpcio client, seen by an independent AMQP subscriber at every step, archived exactly once."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import bagit
import grpc
import pytest
from motcua_dev.harness import ARCHIVED, JOURNEY, Platform, journeys_complete, sample_request, submit_all

from motcua.events.v1 import events_pb2
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc

pytestmark = pytest.mark.e2e

DISTRICTS = ("bim-son", "ba-thuoc")


def total(scrape: dict, series: str, **labels: str) -> float:
    """The sum of ``series`` over the samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in scrape.items() if n == series and set(labels.items()) <= set(ls))


def test_twenty_dossiers_travel_from_intake_to_archive_exactly_once(platform: Platform, s3_endpoint):
    before = {name: platform.metrics(name) for name in ("intake-api", "routing-worker", "notify-worker")}
    answers = submit_all(platform.intake_address, [sample_request(DISTRICTS[n % 2], n) for n in range(20)])
    codes = {a.code for a in answers}
    assert len(codes) == 20

    assert platform.events.wait_until(journeys_complete(codes), timeout=180), platform.progress(codes)

    for code in codes:
        assert platform.events.distinct_types(code) == JOURNEY, code
        seen = platform.events.by_subject()[code]
        areas = {e.area for e in seen}
        assert len(areas) == 1 and areas <= set(DISTRICTS)
        assert {e.routing_key.split(".", 1)[0] for e in seen} == areas

    # Every process's metrics moved with the journeys (motcua.metrics, scraped over HTTP).
    submit = "/motcua.intake.v1.IntakeService/SubmitDossier"
    after = {name: platform.metrics(name) for name in before}
    assert total(after["intake-api"], "motcua_grpc_requests_total", method=submit, code="OK") \
        == total(before["intake-api"], "motcua_grpc_requests_total", method=submit, code="OK") + 20
    assert total(after["intake-api"], "motcua_grpc_request_duration_seconds_count", method=submit) >= 20
    for worker, queue in (("routing-worker", "routing.bim-son"), ("notify-worker", "notify.ba-thuoc")):
        moved = (total(after[worker], "motcua_messages_total", queue=queue, outcome="processed")
                 - total(before[worker], "motcua_messages_total", queue=queue, outcome="processed"))
        assert moved >= 10, (worker, moved)
        assert total(after[worker], "motcua_consumer_up", queue=queue) == 1
        assert total(after[worker], "motcua_timer_duration_seconds_count", job="outbox_relay") \
            > total(before[worker], "motcua_timer_duration_seconds_count", job="outbox_relay")
        assert ("motcua_outbox_oldest_age_seconds" in {n for n, _ in after[worker]}), worker

    # Every side effect happened once: one record per dossier in each service's own store.
    from archive.adapters.records import LedgerRecord
    from intake.adapters.records import DossierRecord
    from notify.adapters.records import NotificationRecord
    from routing.adapters.instances import InstanceRecord
    from signing.adapters.records import SigningRecord

    for service, schema, expected in (("intake", DossierRecord, 20), ("routing", InstanceRecord, 20),
                                      ("signing", SigningRecord, 20), ("notify", NotificationRecord, 60),
                                      ("archive", LedgerRecord, 20)):
        assert platform.count(service, schema) == expected, service

    # The packages are valid BagIt bags holding the submitted documents and the signed result,
    # and the result carries two valid signatures according to poppler's pdfsig.
    for event in [e for e in platform.events.events if e.type == ARCHIVED][:3]:
        archived_event = events_pb2.DossierArchived.FromString(event.body)
        assert [c.name for c in archived_event.copies] == ["primary", "copy"]
        copy = archived_event.copies[0]
        package = b"".join(s3_endpoint.store(copy.bucket).open_version(copy.key, copy.version_id))
        assert hashlib.sha256(package).hexdigest() == archived_event.package_sha256
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(fileobj=io.BytesIO(package)) as tar:
                tar.extractall(tmp, filter="data")
            bag = bagit.Bag(str(Path(tmp) / archived_event.code))
            bag.validate()
            payload = sorted(bag.payload_files())
            assert sum(p.startswith("data/submitted/") for p in payload) == 2
            results = [p for p in payload if p.startswith("data/result/")]
            assert len(results) == 1
            out = subprocess.run(["pdfsig", str(Path(tmp) / archived_event.code / results[0])],
                                 capture_output=True, text=True).stdout
            assert out.count("Signature is Valid.") == 2, out

    # The archive: two locked, verified copies per dossier with one ledger entry each; the S3
    # server refuses to delete a package; the API answers; the ledger verifies, and not once edited.
    _archive_holds(platform, s3_endpoint, sorted(codes))


def _archive_holds(platform: Platform, s3_endpoint, codes: list[str]) -> None:
    import sys
    import urllib.request

    from minio.error import S3Error

    from motcua.archive.v1 import archive_pb2, archive_pb2_grpc

    with grpc.insecure_channel(platform.archive_address) as channel:
        stub = archive_pb2_grpc.ArchiveServiceStub(channel)
        package = stub.GetPackage(archive_pb2.GetPackageRequest(code=codes[0]), timeout=10).package
        assert package.lock_mode == "GOVERNANCE" and package.retention == "permanent"  # the catalog's class
        for copy in package.copies:
            store = s3_endpoint.store(copy.bucket)
            mode, until = store.retention(copy.key, copy.version_id)
            assert mode == "GOVERNANCE" and until.year >= 2100
            with pytest.raises(S3Error, match="Access Denied|AccessDenied"):
                store.client.remove_object(copy.bucket, copy.key, version_id=copy.version_id)
        url = stub.GetDownloadUrl(archive_pb2.GetDownloadUrlRequest(code=codes[0]), timeout=10)
        with urllib.request.urlopen(url.url) as response:  # noqa: S310 - the test's own S3
            assert hashlib.sha256(response.read()).hexdigest() == package.package_sha256 == url.sha256
        result = next(d for d in package.documents if d.role == "result")
        one = stub.GetDownloadUrl(archive_pb2.GetDownloadUrlRequest(code=codes[0], path=result.path), timeout=10)
        with urllib.request.urlopen(one.url) as response:  # noqa: S310 - the test's own S3
            assert hashlib.sha256(response.read()).hexdigest() == result.sha256 == one.sha256
        verified = stub.VerifyPackage(archive_pb2.VerifyPackageRequest(code=codes[0]), timeout=60)
        assert (verified.fixity.state, verified.bag_valid) == ("ok", True), verified
        listed, token = [], ""
        for area in DISTRICTS:
            while True:
                page = stub.ListPackages(archive_pb2.ListPackagesRequest(area=area, page_size=7, page_token=token),
                                         timeout=10)
                listed += [p.code for p in page.packages]
                token = page.next_page_token
                if not token:
                    break
        assert sorted(listed) == codes
    env = {**os.environ, **platform.env}
    run = subprocess.run([sys.executable, "-m", "archive", "verify-ledger"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and f"ledger OK: {len(codes)} entries" in run.stdout, run.stdout + run.stderr


def test_a_repeated_request_returns_the_first_answer_and_stores_nothing_twice(platform: Platform):
    request = sample_request("bim-son", 99)
    first, second = submit_all(platform.intake_address, [request, request])
    assert (first.dossier_id, first.code) == (second.dossier_id, second.code)
    assert platform.events.wait_until(journeys_complete({first.code}), timeout=120), platform.progress({first.code})
    assert platform.events.distinct_types(first.code) == JOURNEY

    reused = intake_pb2.SubmitDossierRequest()
    reused.CopyFrom(request)
    reused.procedure_code = "1.001612"
    with grpc.insecure_channel(platform.intake_address) as channel, pytest.raises(grpc.RpcError) as error:
        intake_pb2_grpc.IntakeServiceStub(channel).SubmitDossier(reused, timeout=10)
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
