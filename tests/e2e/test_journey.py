"""A dossier's whole journey through the five services running as processes: submitted by a stock
grpcio client, seen by an independent AMQP subscriber at every step, archived exactly once."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import bagit
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from motcua_dev.harness import (
    ARCHIVED,
    JOURNEY,
    SAMPLE_PROCEDURES,
    Platform,
    active_step_deadline,
    archived,
    back_from_the_applicant,
    journey,
    journeys_complete,
    package_forms,
    pdfsig,
    register_of_the_day,
    sample_pdf,
    sample_request,
    submit_all,
    supply_supplement,
)
from motcua_dev.pki import dev_nss_trust_store

from motcua.events.v1 import events_pb2
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.objects import ObjectRef
from motcua.protobufs import document_ref_dict
from motcua.signing.v1 import signing_pb2, signing_pb2_grpc

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
    # ... and the applicants' e-mails arrived, each once, at the SMTP server (notification.sent
    # now means the server accepted it)
    mails = [m for m in platform.mail.messages if any(code in str(m["Subject"]) for code in codes)]
    assert len(mails) == 60 and len({str(m["Message-ID"]) for m in mails}) == 60
    assert all(m.get_body(("html",)) is not None and m.get_body(("plain",)) is not None for m in mails)

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
            # the archive had every PDF the platform signed or sealed validated by the signing api:
            # the result and each form, valid, their signers named in the package's PREMIS log
            premis = json.loads((Path(tmp) / archived_event.code / "data/metadata/premis.json").read_text())
            checks = {e["eventDetailInformation"][0]["eventDetail"].split(":")[0]: e
                      for e in premis["events"] if e["motcuaEventType"] == "archive.signature_check"}
            assert sorted(checks) == sorted(p for p in payload if p.startswith(("data/result/", "data/forms/")))
            assert {c["eventOutcomeInformation"][0]["eventOutcome"] for c in checks.values()} == {"success"}, checks
            assert "B-LT" in str(checks[results[0]]) and "none found" not in str(checks)

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


# -- signing as a trust service -----------------------------------------------------------------

SIGNED = "vn.motcua.document.signed.v1"
FAILED = "vn.motcua.dossier.signing_failed.v1"
# unit, procedure → (personal signer, seal)
CASES = {
    ("bim-son", "1.004616"): ("Nguyễn Văn An", "UBND thị xã Bỉm Sơn"),
    ("ba-thuoc", "1.004616"): ("Hà Văn Bình", "UBND huyện Bá Thước"),
    ("xa-luong-ngoai", "1.001193"): ("Hà Thị Mai", "UBND xã Lương Ngoại"),
    ("xa-dien-quang", "1.001776"): ("Hà Văn Bình", "UBND huyện Bá Thước"),  # decided and sealed at the district
}


def _cli(platform: Platform, *args: str) -> str:
    env = {**os.environ, **platform.env}
    return subprocess.run([sys.executable, "-m", "signing", *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def _validate(stub, requests) -> signing_pb2.ValidateDocumentResponse:
    return stub.ValidateDocument(iter(requests), timeout=60)


def test_dossiers_are_signed_by_their_official_and_sealed_by_their_issuing_unit(platform: Platform, s3_endpoint):
    """Signing as a trust service, across Bỉm Sơn and Bá Thước, with every service as processes:

    * who signs comes from the workflow: the official who approved (the harness plays ``sign-<unit>``,
      enrolled from the dev roster) and the seal of the unit that issues the result (the seal step's
      unit: a Bá Thước dossier is sealed by UBND huyện Bá Thước, a commune's birth registration by the
      commune, a commune-received allowance decided at the district by the district);
    * the keys live in the platform's SoftHSM2 token, certified by the development PKI served over
      HTTP; results reach PAdES B-LT (``document.signed`` says so, with the token's time);
    * an official whose certificate was revoked before signing (Thọ Xuân's) is refused: routing
      publishes ``dossier.signing_failed`` naming the certificate, nothing is signed;
    * SigningService.ValidateDocument over a stock grpcio client reports each signature; bad input is
      INVALID_ARGUMENT.
    """
    revoked = _cli(platform, "revoke", "official", "sign-tho-xuan", "--reason", "key_compromise")
    assert "revoked" in revoked

    requests = [sample_request(unit, n, procedure_code=procedure) for n, (unit, procedure) in enumerate(CASES)]
    refused_request = sample_request("tho-xuan", 50)
    answers = submit_all(platform.intake_address, [*requests, refused_request])
    by_code = {a.code: key for a, key in zip(answers, [*CASES, None], strict=True)}
    refused_code = answers[-1].code
    expected = {code: journey(SAMPLE_PROCEDURES[key[1]][1]) for code, key in by_code.items() if key}
    assert platform.events.wait_until(journeys_complete(expected), timeout=240), platform.progress(set(expected))
    assert platform.events.wait_until(lambda events: any(e.type == FAILED and e.subject == refused_code
                                                         for e in events), timeout=60)

    # document.signed: the official and the seal of the dossier's issuing unit, at B-LT, with the
    # time of the seal's timestamp token
    signed = {e.subject: events_pb2.DocumentSigned.FromString(e.body) for e in platform.events.seen(SIGNED)}
    for code, key in by_code.items():
        if key is None:
            assert code not in signed  # refused: nothing signed
            continue
        event = signed[code]
        assert list(event.signers) == list(CASES[key]), (key, event.signers)
        assert event.level == "B-LT" and event.signed_at.seconds > 0
        assert event.official_id.startswith("sign-")
    failure = events_pb2.SigningFailed.FromString(
        next(e for e in platform.events.seen(FAILED) if e.subject == refused_code).body)
    assert "revoked" in failure.reason and "Lê Văn Quý" in failure.reason, failure.reason
    assert failure.official_id == "sign-tho-xuan"

    bt_code = next(code for code, key in by_code.items() if key == ("ba-thuoc", "1.004616"))
    objects = s3_endpoint.store(platform.env["MOTCUA_S3_BUCKET"])
    signed_pdf = objects.get(ObjectRef.from_dict(document_ref_dict(signed[bt_code].signed)))

    # pdfsig, trusting the dev root as an agency would: both signatures valid and trusted
    path = platform.data_dir / "bt.pdf"
    path.write_bytes(signed_pdf)
    nss = dev_nss_trust_store(platform.env["MOTCUA_PKI_DIR"], platform.data_dir / "nss")
    signatures = pdfsig(path, "-nssdir", nss)
    seen = [(s["Signature Field Name"], s["Signature Validation"], s["Certificate Validation"]) for s in signatures]
    assert seen == [("Sig_Official", "Signature is Valid.", "Certificate is Trusted."),
                    ("Sig_Seal", "Signature is Valid.", "Certificate is Trusted.")], signatures
    assert signatures[1]["Signer Certificate Common Name"] == "UBND huyện Bá Thước"

    with grpc.insecure_channel(platform.signing_address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="motcua.signing.v1.SigningService"), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = signing_pb2_grpc.SigningServiceStub(channel)

        stored = _validate(stub, [signing_pb2.ValidateDocumentRequest(stored=signing_pb2.StoredDocument(code=bt_code))])
        streamed = _validate(stub, [signing_pb2.ValidateDocumentRequest(chunk=signed_pdf[i:i + 65536])
                                    for i in range(0, len(signed_pdf), 65536)])
        whole = stub.ValidatePdf(signing_pb2.ValidatePdfRequest(pdf=signed_pdf), timeout=60)  # archive's way
        assert (whole.sha256, whole.size) == (streamed.sha256, len(signed_pdf))
        for report in (stored, streamed, whole):
            assert report.verdict == signing_pb2.VERDICT_VALID, report
            official, seal = report.signatures
            assert (official.signer, seal.signer) == ("Hà Văn Bình", "UBND huyện Bá Thước")
            for s in report.signatures:
                assert (s.level, s.intact, s.trusted, s.revocation) == ("B-LT", True, True, "good"), s
                assert "Issuing CA" in s.issuer and s.timestamp.seconds > 0
            assert official.modifications == "form_filling" and seal.modifications in ("none", "lta_updates")

        listed = stub.ListSignatures(signing_pb2.ListSignaturesRequest(code=bt_code), timeout=10)
        assert [(r.level, r.seal_unit, list(r.signers)) for r in listed.results] == [
            ("B-LT", "ba-thuoc", ["Hà Văn Bình", "UBND huyện Bá Thước"])]

        for bad in ([signing_pb2.ValidateDocumentRequest(chunk=b"not a pdf at all")],
                    [signing_pb2.ValidateDocumentRequest(chunk=sample_pdf("no signature"))],
                    []):
            with pytest.raises(grpc.RpcError) as error:
                _validate(stub, bad)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
            with pytest.raises(grpc.RpcError) as error:
                stub.ValidatePdf(signing_pb2.ValidatePdfRequest(pdf=b"".join(r.chunk for r in bad)), timeout=60)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
        with pytest.raises(grpc.RpcError) as error:
            stub.ListSignatures(signing_pb2.ListSignaturesRequest(code=refused_code), timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


# -- the one-stop desk's forms in the archive package ---------------------------------------------

APOLOGY = "vn.motcua.dossier.apology_issued.v1"


def test_a_late_supplemented_dossiers_forms_are_sealed_in_its_package_and_its_units_register(platform: Platform):
    """The desk's paperwork of one dossier, with every service as processes: the reviewer asks for
    a supplement (form 02), the applicant supplies it through IntakeService.SupplementDossier; the
    reviewer then holds the dossier while the platform's clock moves to a minute past the review's
    deadline (the processes that read it restart with MOTCUA_CLOCK_OFFSET_S), so routing's SLA
    sweep issues the apology with a new appointment (form 04) before the appointment it replaces,
    as `make demo` does under `make run`; released, the dossier
    goes on to its return (form 05) and the archive. Its package holds forms 01, 02, 04 and 05,
    each sealed by the receiving unit (pyHanko and pdfsig agree), and the unit's register of the
    reception day (form 06) lists it, sealed. The clock is moved back at the end."""
    from motcua.protobufs import datetime_of
    from motcua.worktime import VN_TZ
    from signing.adapters.pdf import validate_pdf

    (answer,) = submit_all(platform.intake_address, [sample_request("ba-thuoc", 300)])
    code = answer.code
    officials = platform.officials
    assert officials is not None
    officials.supplements[code] = ("Bản vẽ thiết kế có chữ ký của chủ đầu tư",)
    asked = "vn.motcua.dossier.supplement_requested.v1"
    assert platform.events.wait_until(lambda events: any(e.type == asked and e.subject == code for e in events),
                                      timeout=120), platform.progress({code})
    requested = events_pb2.SupplementRequested.FromString(
        next(e for e in platform.events.seen(asked) if e.subject == code).body)
    assert list(requested.components) == ["Bản vẽ thiết kế có chữ ký của chủ đầu tư"]
    officials.held.add(code)  # the review, back from the applicant, is left to run late
    assert supply_supplement(platform.intake_address, code, "1.004616").status == 4
    supplemented = "vn.motcua.dossier.supplemented.v1"
    assert platform.events.wait_until(lambda events: any(e.type == supplemented and e.subject == code
                                                         for e in events), timeout=60), platform.progress({code})
    late = active_step_deadline(platform.routing_address, code, back_from_the_applicant) + dt.timedelta(minutes=1)
    try:
        platform.move_clock((late - dt.datetime.now(dt.UTC)).total_seconds(), {"MOTCUA_SLA_SWEEP_INTERVAL_S": "1"})
        assert platform.events.wait_until(lambda events: any(e.type == APOLOGY and e.subject == code
                                                             for e in events), timeout=120), platform.progress({code})
        officials.held.discard(code)
        assert platform.events.wait_until(archived({code}), timeout=180), platform.progress({code})
        forms = package_forms(platform.archive_address, code)
    finally:
        officials.held.discard(code)
        platform.move_clock(0, {"MOTCUA_SLA_SWEEP_INTERVAL_S": "30"})
    apology = events_pb2.ApologyIssued.FromString(
        next(e for e in platform.events.seen(APOLOGY) if e.subject == code).body)
    assert not apology.late  # before the appointment it replaces, as the circular wants
    assert datetime_of(apology.new_due_at) > datetime_of(apology.previous_due_at) > datetime_of(apology.issued_at) \
        >= late - dt.timedelta(seconds=1)

    root = Path(platform.env["MOTCUA_TRUST_ROOTS"])
    roots = [root.read_bytes()]
    nss = dev_nss_trust_store(platform.env["MOTCUA_PKI_DIR"], platform.data_dir / "nss")  # as the demo's
    seal = "UBND huyện Bá Thước"

    def sealed_by_the_unit(name: str, data: bytes) -> None:
        (report,) = validate_pdf(data, roots)
        assert (report.field_name, report.signer_name, report.verdict) == ("Sig_Seal", seal, "valid"), \
            (name, report.problems)
        path = platform.data_dir / f"{code}-{name}.pdf"
        path.write_bytes(data)
        (sig,) = pdfsig(path, "-nssdir", nss)
        assert (sig["Signature Validation"], sig["Certificate Validation"]) == (
            "Signature is Valid.", "Certificate is Trusted."), (name, sig)
        assert sig["Signer Certificate Common Name"] == seal, (name, sig)

    assert sorted(f.number for f in forms) == ["01", "02", "04", "05"], [f.name for f in forms]
    assert all(f.path.startswith("data/forms/") for f in forms)
    for form in forms:
        sealed_by_the_unit(f"form-{form.number}", form.data)

    day = datetime_of(answer.received_at).astimezone(VN_TZ).date()
    rows, register = register_of_the_day(platform.routing_address, "ba-thuoc", day)
    assert code in {r.code for r in rows}
    sealed_by_the_unit("form-06", register)
