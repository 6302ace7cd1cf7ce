"""A dossier's whole journey through the five services running as processes: submitted by a stock
grpcio client, seen by an independent AMQP subscriber at every step, archived exactly once."""

from __future__ import annotations

import hashlib
import io
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


def test_twenty_dossiers_travel_from_intake_to_archive_exactly_once(platform: Platform, s3_endpoint):
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
