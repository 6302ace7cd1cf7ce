"""A dossier's whole life through the real services, acted on by officials through the RoutingService
API with a stock grpcio client: accepted at the desk, assigned, reviewed, transferred to the
province, a supplement requested and answered, approved, signed with the personal signature and
the seal, result ready, returned and archived — with every due date checked against values
computed by hand. Beside it: a dossier refused after examination (status 8) and one withdrawn by
its applicant while in processing (status 7).

The platform's clock is moved (MOTCUA_CLOCK_OFFSET_S, tests only) to Monday 5 April 2027, 06:30 in
Hà Nội, before office hours, so the clock of a dossier received now starts at 07:00 sharp and
every deadline is a round number. Hùng Kings' day, Friday 16 April 2027, is a day off.

Procedure 1.004616 version 2 (building permit, 15 working days at the desk, supplement policy
restart): steps receive 5 %, assign 5 %, review 55 % (may forward), approve 15 %, sign 10 %,
seal 5 %, return 5 % of 120 working hours (8 h a day: 07:00–11:30, 13:30–17:00), from Mon 5/4 07:00:
  receive  6 h   → Mon 5/4 07:00 + 4.5 h = 11:30, + 1.5 h from 13:30            → Mon  5/4 15:00
  assign  12 h   → Mon 8 h, Tue 6/4 4 h                                          → Tue  6/4 11:00
  review  78 h   → 9 days (5/4–9/4, 12/4–15/4) 72 h, Fri 16/4 off, Mon 19/4 6 h  → Mon 19/4 15:00
  approve 96 h   → 12 days: … Mon 19/4, Tue 20/4, Wed 21/4                       → Wed 21/4 17:00
  sign   108 h   → 13 days (… Thu 22/4) 104 h, Fri 23/4 4 h                      → Fri 23/4 11:00
  seal   114 h   → 14 days (… Fri 23/4) 112 h, Mon 26/4 2 h                      → Mon 26/4 09:00
  return 120 h   → 15 days                                                       → Mon 26/4 17:00 (the due date)
The supplement is requested and answered before 07:00 the same day: restarting the 15 days from
the resubmission starts the clock at 07:00 again, so every date stands.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from motcua_dev.harness import Platform, running_platform, sample_pdf, sample_request
from motcua_dev.testing import S3Endpoint

from motcua.events.v1 import events_pb2
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.objects import ObjectRef
from motcua.protobufs import datetime_of, document_ref_dict
from motcua.routing.v1 import routing_pb2, routing_pb2_grpc
from motcua.worktime import VN_TZ

pytestmark = pytest.mark.e2e

PLATFORM_NOW = dt.datetime(2027, 4, 5, 6, 30, tzinfo=VN_TZ)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


STEP_DEADLINES = [at(2027, 4, 5, 15, 0), at(2027, 4, 6, 11, 0), at(2027, 4, 19, 15, 0), at(2027, 4, 21, 17, 0),
                  at(2027, 4, 23, 11, 0), at(2027, 4, 26, 9, 0), at(2027, 4, 26, 17, 0)]
DUE = STEP_DEADLINES[-1]

DESK = routing_pb2.Official(official_id="mc-bim-son", unit="bim-son", roles=["receive", "return"])
HEAD = routing_pb2.Official(official_id="tp-kt-bim-son", unit="bim-son", roles=["assign"])
REVIEWER = routing_pb2.Official(official_id="cv-kt-bim-son", unit="bim-son", roles=["review"])
PROVINCE = routing_pb2.Official(official_id="cv-sxd-thanh-hoa", unit="thanh-hoa", roles=["review"])
LEADER = routing_pb2.Official(official_id="pp-kt-bim-son", unit="bim-son", roles=["approve"])
CHAIRMAN = routing_pb2.Official(official_id="ct-bim-son", unit="bim-son", roles=["sign"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory, amqp_uri: str, s3_endpoint: S3Endpoint) -> Iterator[Platform]:
    offset = (PLATFORM_NOW - dt.datetime.now(dt.UTC)).total_seconds()
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    with running_platform(tmp_path_factory.mktemp("lifecycle"), amqp_uri, s3_endpoint.env(bucket),
                          extra_env={"MOTCUA_CLOCK_OFFSET_S": f"{offset:.3f}"}, officials=None) as running:
        yield running


class Desk:
    """The stock grpcio clients of the desk's and the officials' applications."""

    def __init__(self, platform: Platform):
        self.platform = platform
        self.intake = intake_pb2_grpc.IntakeServiceStub(grpc.insecure_channel(platform.intake_address))
        self.routing = routing_pb2_grpc.RoutingServiceStub(grpc.insecure_channel(platform.routing_address))

    def submit(self, n: int) -> str:
        request = sample_request("bim-son", n, documents=1)
        return self.intake.SubmitDossier(request, timeout=30).code

    def timeline(self, code: str) -> routing_pb2.GetTimelineResponse:
        return self.routing.GetTimeline(routing_pb2.GetTimelineRequest(code=code), timeout=10)

    def wait_timeline(self, code: str, predicate, timeout: float = 60) -> routing_pb2.GetTimelineResponse:
        deadline = time.monotonic() + timeout
        while True:
            try:
                timeline = self.timeline(code)
                if predicate(timeline):
                    return timeline
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:  # not opened yet: wait
                    raise
            assert time.monotonic() < deadline, f"{code} did not get there:\n{self.platform.progress({code})}"
            time.sleep(0.2)

    def act(self, code: str, official: routing_pb2.Official, action: str, **fields) -> routing_pb2.GetTimelineResponse:
        version = self.timeline(code).version
        request = routing_pb2.ActRequest(request_id=str(uuid.uuid4()), code=code, official=official, action=action,
                                         expected_version=version, **fields)
        return self.routing.Act(request, timeout=30).timeline

    def dossier(self, code: str) -> intake_pb2.Dossier:
        return self.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10).dossier

    def wait_dossier(self, code: str, predicate, timeout: float = 60) -> intake_pb2.Dossier:
        deadline = time.monotonic() + timeout
        while not predicate(dossier := self.dossier(code)):
            assert time.monotonic() < deadline, f"{code} did not get there:\n{self.platform.progress({code})}"
            time.sleep(0.2)
        return dossier


def event_types(platform: Platform, code: str) -> list[str]:
    return [e.type.removeprefix("vn.motcua.").removesuffix(".v1") for e in platform.events.by_subject().get(code, [])]


def test_the_whole_life_of_a_dossier_with_hand_computed_due_dates(platform: Platform, s3_endpoint, tmp_path):
    desk = Desk(platform)
    code = desk.submit(1)
    dossier = desk.dossier(code)
    assert dossier.procedure_version == 2
    assert datetime_of(dossier.received_at).astimezone(VN_TZ).date() == dt.date(2027, 4, 5)
    assert datetime_of(dossier.due_at) == DUE

    opened = desk.wait_timeline(code, lambda t: t.rows)
    assert datetime_of(opened.due_at) == DUE
    assert [datetime_of(r.step_deadline) for r in opened.rows] == [STEP_DEADLINES[0]]

    desk.act(code, DESK, "complete")
    t = desk.act(code, HEAD, "complete", note="Giao chuyên viên Kinh tế và Hạ tầng")
    assert datetime_of(t.rows[-1].step_deadline) == STEP_DEADLINES[1]
    desk.act(code, REVIEWER, "claim")
    # Liên thông: the review needs the province's Department of Construction.
    t = desk.act(code, REVIEWER, "transfer", target_unit="thanh-hoa", reason="Công trình cần ý kiến Sở Xây dựng")
    assert (t.rows[-1].action, t.rows[-1].unit) == ("transfer", "bim-son")
    assert datetime_of(t.rows[-1].step_deadline) == STEP_DEADLINES[2]  # a transfer keeps the step's deadline
    with pytest.raises(grpc.RpcError) as error:  # the district may not act on it any more
        desk.act(code, REVIEWER, "complete")
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # The province asks the applicant for a supplement; intake records it (status 5).
    supplement_deadline = at(2027, 4, 12, 17, 0)
    t = desk.act(code, PROVINCE, "request_supplement", reason="Bổ sung bản vẽ móng có chữ ký",
                 deadline=_timestamp(supplement_deadline))
    assert t.status == 5
    desk.wait_dossier(code, lambda d: d.status == 5)
    supplemented = desk.intake.SupplementDossier(intake_pb2.SupplementDossierRequest(
        request_id=str(uuid.uuid4()), code=code, documents=[intake_pb2.Document(
            name="ban-ve-mong.pdf", media_type="application/pdf", content=sample_pdf("Ban ve mong"),
            component="ban-ve")]), timeout=30).dossier
    assert supplemented.status == 4 and datetime_of(supplemented.due_at) == DUE  # restart from 07:00 again
    resumed = desk.wait_timeline(code, lambda t: t.status == 4 and t.rows[-1].action == "supplement_received")
    assert datetime_of(resumed.due_at) == DUE and resumed.rows[-1].unit == "thanh-hoa"
    assert datetime_of(resumed.rows[-1].step_deadline) == STEP_DEADLINES[2]

    desk.act(code, PROVINCE, "complete", note="Sở Xây dựng thống nhất")
    t = desk.act(code, LEADER, "complete")
    assert datetime_of(t.rows[-1].step_deadline) == STEP_DEADLINES[3]
    t = desk.act(code, CHAIRMAN, "approve")
    assert t.status == 4 and t.rows[-1].action == "approve"
    assert datetime_of(t.rows[-1].step_deadline) == STEP_DEADLINES[4]

    # Signing applies the chairman's signature and the seal and reports back: result ready (9).
    ready = desk.wait_timeline(code, lambda t: t.status == 9, timeout=90)
    assert ready.rows[-1].action == "signed"
    desk.act(code, DESK, "return_result", channel="desk", receiver="Công dân 1")

    assert platform.events.wait_until(
        lambda _: "vn.motcua.dossier.archived.v1" in platform.events.distinct_types(code), 120), \
        platform.progress({code})
    final = desk.timeline(code)
    assert final.status == 10
    assert [r.action for r in final.rows] == [
        "opened", "complete", "complete", "claim", "transfer", "request_supplement", "supplement_received",
        "complete", "complete", "approve", "signed", "return_result"]
    assert [r.unit for r in final.rows] == [
        "bim-son", "bim-son", "bim-son", "bim-son", "bim-son", "thanh-hoa", "thanh-hoa", "thanh-hoa", "bim-son",
        "bim-son", "bim-son", "bim-son"]
    deadlines_by_step = {r.step_index: datetime_of(r.step_deadline) for r in final.rows}
    assert deadlines_by_step == {0: STEP_DEADLINES[0], 1: STEP_DEADLINES[1], 2: STEP_DEADLINES[2],
                                 3: STEP_DEADLINES[3], 4: STEP_DEADLINES[4], 6: STEP_DEADLINES[6]}
    assert datetime_of(final.due_at) == DUE

    types = event_types(platform, code)
    for kind in ("dossier.received", "dossier.assigned", "dossier.step_completed", "dossier.transferred",
                 "dossier.supplement_requested", "dossier.supplemented", "dossier.signing_requested",
                 "document.signed", "dossier.result_ready", "dossier.returned", "dossier.archived"):
        assert kind in types, (kind, types)
    assert types.count("dossier.transferred") == 1 and types.count("dossier.returned") == 1
    transferred = _event(platform, code, "dossier.transferred", events_pb2.DossierTransferred)
    assert (transferred.from_unit, transferred.to_unit, transferred.to_level) == ("bim-son", "thanh-hoa", "province")
    # the applicant was told of the supplement request, the result and its return
    told = {"vn.motcua.dossier.supplement_requested.v1", "vn.motcua.dossier.returned.v1"}
    assert platform.events.wait_until(lambda _: told <= _notified(platform, code), 60), _notified(platform, code)

    # The archive holds the submitted document, the supplemented one and the signed result.
    returned = _event(platform, code, "dossier.returned", events_pb2.DossierReturned)
    assert sorted(d.name for d in returned.documents) == ["ban-ve-mong.pdf", "tai-lieu-1.pdf"]
    signed = s3_endpoint.store(platform.env["MOTCUA_S3_BUCKET"]).get(
        ObjectRef.from_dict(document_ref_dict(returned.result)))
    (tmp_path / "result.pdf").write_bytes(signed)
    out = subprocess.run(["pdfsig", str(tmp_path / "result.pdf")], capture_output=True, text=True).stdout
    assert out.count("Signature is Valid.") == 2, out
    # Every form of its life (01 by intake's worker, 02 by routing's api, 05 by routing's worker once
    # the result was returned) carries one valid, invisible seal of the receiving unit, applied
    # through the signing api before it was stored.
    store = s3_endpoint.store(platform.env["MOTCUA_S3_BUCKET"])
    assert list(returned.forms_to_follow) == ["05"]
    issued = "vn.motcua.dossier.form_issued.v1"
    assert platform.events.wait_until(lambda _: platform.events.distinct_types(code).get(issued) == 2, 60)
    (slip,) = [m.document for m in (events_pb2.FormIssued.FromString(e.body)
                                    for e in platform.events.by_subject()[code] if e.type == issued) if m.form == "05"]
    forms = [desk.dossier(code).receipt, *returned.forms, slip]
    assert {f.name for f in forms} >= {"phieu-yeu-cau-bo-sung-02.pdf", "phieu-kiem-soat-05.pdf"}
    for n, form in enumerate(forms):
        (tmp_path / f"form-{n}.pdf").write_bytes(store.get(ObjectRef.from_dict(document_ref_dict(form))))
        out = subprocess.run(["pdfsig", str(tmp_path / f"form-{n}.pdf")], capture_output=True, text=True).stdout
        assert out.count("Signature #") == 1 and "Signature is Valid." in out, (form.name, out)
        assert "Signature Field Name: Sig_Seal" in out and "Bỉm Sơn" in out, (form.name, out)

    tracked = desk.intake.TrackDossier(intake_pb2.TrackDossierRequest(code=code), timeout=10)
    assert tracked.status == 10 and datetime_of(tracked.due_at) == DUE

    # The archival package tells the dossier's life: its PREMIS log (checked by the schema) has
    # the reception, the steps, the supplement, the signature and the return, in time order, and
    # its Decree 30/2020 metadata lists the documents with the result's signers.
    _package_tells_the_life(platform, s3_endpoint, code)
    assert "Công dân" not in str(tracked)


def test_a_dossier_refused_after_examination_stops(platform: Platform, s3_endpoint, tmp_path):
    desk = Desk(platform)
    code = desk.submit(2)
    desk.wait_timeline(code, lambda t: t.rows)
    desk.act(code, DESK, "complete")
    desk.act(code, HEAD, "complete")
    with pytest.raises(grpc.RpcError) as error:  # a reason is required
        desk.act(code, REVIEWER, "refuse")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in error.value.details()
    t = desk.act(code, REVIEWER, "refuse", reason="Vị trí xây dựng không phù hợp quy hoạch")
    assert t.status == 8
    with pytest.raises(grpc.RpcError) as error:
        desk.act(code, LEADER, "complete")
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "status 8" in error.value.details()
    desk.wait_dossier(code, lambda d: d.status == 8)  # intake's tracking follows dossier.stopped
    stopped = _wait_event(platform, code, "dossier.stopped", events_pb2.DossierStopped)
    assert (stopped.cause, stopped.reason) == ("refused", "Vị trí xây dựng không phù hợp quy hoạch")
    objects = s3_endpoint.store(platform.env["MOTCUA_S3_BUCKET"])
    notice = objects.get(ObjectRef.from_dict(document_ref_dict(stopped.notice)))
    (tmp_path / "notice.pdf").write_bytes(notice)
    text = " ".join(subprocess.run(["pdftotext", str(tmp_path / "notice.pdf"), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())  # lines wrapped by the layout joined again
    assert "DỪNG GIẢI QUYẾT HỒ SƠ" in text and "Vị trí xây dựng không phù hợp quy hoạch" in text and code in text
    # sealed by the receiving unit (bim-son) through the signing api: one valid, invisible signature
    sig = subprocess.run(["pdfsig", str(tmp_path / "notice.pdf")], capture_output=True, text=True).stdout
    assert sig.count("Signature #") == 1 and "Signature is Valid." in sig, sig
    assert "Signature Field Name: Sig_Seal" in sig and "Bỉm Sơn" in sig, sig


def test_a_dossier_withdrawn_by_its_applicant_closes_its_workflow(platform: Platform):
    desk = Desk(platform)
    code = desk.submit(3)
    desk.wait_timeline(code, lambda t: t.rows)
    desk.act(code, DESK, "complete")
    desk.wait_dossier(code, lambda d: d.status == 4)
    withdrawn = desk.intake.WithdrawDossier(intake_pb2.WithdrawDossierRequest(
        request_id=str(uuid.uuid4()), code=code, reason="Thay đổi thiết kế", identity_number="038000000003"),
        timeout=10).dossier
    assert withdrawn.status == 7
    closed = desk.wait_timeline(code, lambda t: t.status == 7)
    assert closed.rows[-1].action == "withdrawn" and closed.rows[-1].note == "Thay đổi thiết kế"
    tasks = desk.routing.ListTasks(routing_pb2.ListTasksRequest(unit="bim-son"), timeout=10).tasks
    assert code not in {task.code for task in tasks}


def _notified(platform: Platform, code: str) -> set[str]:
    seen = platform.events.by_subject().get(code, [])
    return {events_pb2.NotificationSent.FromString(e.body).cause_type for e in seen
            if e.type == "vn.motcua.notification.sent.v1"}


def _timestamp(value: dt.datetime):
    from motcua.protobufs import timestamp

    return timestamp(value)


def _package_tells_the_life(platform: Platform, s3_endpoint: S3Endpoint, code: str) -> None:
    import io
    import json
    import tarfile
    from pathlib import Path

    import jsonschema

    archived = _event(platform, code, "dossier.archived", events_pb2.DossierArchived)
    copy = archived.copies[0]
    packed = b"".join(s3_endpoint.store(copy.bucket).open_version(copy.key, copy.version_id))
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        premis = json.loads(tar.extractfile(f"{code}/data/metadata/premis.json").read())
        decree30 = json.loads(tar.extractfile(f"{code}/data/metadata/decree30.json").read())
    schema = Path(__file__).parents[2] / "services/archive/tests/schemas/premis-events.schema.json"
    jsonschema.validate(premis, json.loads(schema.read_text()))
    life = [e for e in premis["events"] if not e["motcuaEventType"].startswith("archive.")]
    checks = [e for e in premis["events"] if e["motcuaEventType"] == "archive.signature_check"]
    kinds = [e["motcuaEventType"] for e in premis["events"]]
    # form 05, issued by routing's worker once the result was returned, which the package waited for
    assert [e["motcuaEventType"] for e in life[-2:]] == ["dossier.returned", "dossier.form_issued"]
    assert kinds[-2:] == ["archive.package", "archive.digests"]
    for kind in ("dossier.received", "dossier.assigned", "dossier.step_completed", "dossier.supplemented",
                 "document.signed"):
        assert kind in kinds, (kind, kinds)
    # every PDF the platform signed or sealed (the result; forms 01, 02 and 05) validated by the
    # signing api before the package was built: valid
    assert sorted(c["eventDetailInformation"][0]["eventDetail"].split("/")[1] for c in checks) == [
        "forms", "forms", "forms", "result"], checks
    assert {c["eventOutcomeInformation"][0]["eventOutcome"] for c in checks} == {"success"}, checks
    # in time order (signing stamps real time, not this platform's moved clock: it may come first)
    times = [e["eventDateTime"] for e in life]
    assert times == sorted(times)
    assert decree30["file"]["retention"] == "permanent" and archived.retention == "permanent"
    (result,) = [d for d in decree30["documents"] if d["role"] == "result"]
    assert result["signer"] and result["format"] == "application/pdf" and result["page_count"]


def _event(platform: Platform, code: str, kind: str, message):
    (event,) = [e for e in platform.events.by_subject()[code] if e.type == f"vn.motcua.{kind}.v1"]
    return message.FromString(event.body)


def _wait_event(platform: Platform, code: str, kind: str, message):
    assert platform.events.wait_until(
        lambda _: f"vn.motcua.{kind}.v1" in platform.events.distinct_types(code), 60), platform.progress({code})
    return _event(platform, code, kind, message)

