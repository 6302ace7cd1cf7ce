"""Supplements (bổ sung hồ sơ) and submissions that name streamed uploads, on real SeaweedFS,
RabbitMQ and both store backends.

Routing asks for a supplement with its public event ``dossier.supplement_requested``; here it is
built and fed to intake's worker dispatch as the broker would deliver it. The applicant answers with
``Dossiers.supplement``. Due dates are computed by hand in the comments (07:00–11:30, 13:30–17:00,
Monday–Friday; no public holiday falls in Nov–Dec 2026).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from motcua_dev.testing import FakeSealer

from intake.adapters.forms import PDF_FORMS
from intake.adapters.records import RECORDS, DossierRecord
from intake.application.dossiers import Dossiers, SubmitDossier, SupplementDossier
from intake.application.forms import Forms
from intake.application.progress import Progress
from intake.domain.dossier import Dossier, Status
from intake.domain.submission import Applicant, IncomingDocument
from intake.entrypoints.messages import dispatcher
from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from motcua.events.v1 import events_pb2
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import build_event, parse_event
from motcua.messaging.outbox import Outbox
from motcua.objects import ObjectRef
from motcua.protobufs import timestamp
from motcua.unit_of_work import UnitsOfWork

pytestmark = pytest.mark.integration

VN = ZoneInfo("Asia/Ho_Chi_Minh")
APPLICANT = Applicant(full_name="Lê Thị Hoa", identity_number="038190004321")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)
SOCIAL_ALLOWANCE = "1.001776"  # commune, 17 working days, supplement policy pause
DISABILITY = "1.001699"  # commune, 25 calendar days, pause
BUILDING_PERMIT = "1.004616"  # district, 15 working days; version 2: restart
COMMUNE = "phuong-ba-dinh"


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)


def pdf(text: str) -> bytes:
    return b"%PDF-1.7\n% " + text.encode() + b"\ntrailer\n<< >>\n%%EOF\n"


def doc(component: str, name: str | None = None, content: bytes | None = None,
        media_type: str = "application/pdf") -> IncomingDocument:
    return IncomingDocument(name=name or f"{component}.pdf", media_type=media_type,
                            content=content if content is not None else pdf(component), component=component)


FIRST_COMPONENT = {SOCIAL_ALLOWANCE: "to-khai", DISABILITY: "don-de-nghi", BUILDING_PERMIT: "don-de-nghi"}


def submit(dossiers: Dossiers, procedure: str, district: str, uploaded=()) -> Dossier:
    documents = [] if uploaded else [doc(FIRST_COMPONENT[procedure])]
    request_id = f"req-{uuid.uuid4()}"
    return dossiers.submit(SubmitDossier(request_id=request_id, fingerprint=request_id, procedure_code=procedure,
                                         receiving_unit=district, applicant=APPLICANT, documents=documents,
                                         uploaded=list(uploaded)))


def supplement_requested(dossier: Dossier, at: datetime, deadline: datetime | None = None,
                         reason: str = "Thiếu giấy xác nhận khuyết tật") -> Delivery:
    """Routing's public event as intake's worker receives it from its queue."""
    event = build_event(name="dossier.supplement_requested", source="/motcua/routing", subject=dossier.code,
                        area=dossier.area, time=at, data=events_pb2.SupplementRequested(
                            dossier_id=dossier.id, code=dossier.code, receiving_unit=dossier.receiving_unit,
                            area=dossier.area, reason=reason,
                            requested_by="chuyen-vien-ldtbxh", requested_at=timestamp(at),
                            supplement_deadline=timestamp(deadline) if deadline else None,
                            due_at=timestamp(dossier.due_at), status=int(Status.SUPPLEMENT_REQUESTED)))
    message = event.to_outgoing()
    return Delivery(body=message.body, headers=message.headers, content_type=message.content_type,
                    queue=f"intake.{dossier.area}", routing_key=message.routing_key)


def answer(code: str, *documents: IncomingDocument, uploaded=(), request_id: str | None = None,
           fingerprint: str | None = None) -> SupplementDossier:
    request_id = request_id or f"sup-{uuid.uuid4()}"
    return SupplementDossier(request_id=request_id, fingerprint=fingerprint or request_id, code=code,
                             documents=list(documents), uploaded=list(uploaded))


@pytest.fixture
def progress(dossiers: Dossiers, store, bucket, catalog, publisher) -> Callable[[Delivery], None]:
    """Intake's worker handling one delivery, as its runtime does."""
    forms = Forms(UnitsOfWork(store, Outbox(publisher)), bucket, catalog, "https://dichvucong.example.vn", RECORDS,
                  PDF_FORMS, FakeSealer())
    return dispatcher(Progress(dossiers, forms))


def keys(bucket) -> list[str]:
    return sorted(o.object_name for o in bucket.client.list_objects(bucket.bucket, recursive=True))


# -- the clock policies ---------------------------------------------------------------------------


def test_pause_moves_the_appointment_by_the_working_time_spent_waiting(dossiers, progress, clock, broker):
    # Received Thursday 26/11/2026 01:00 (TEST_NOW) → the clock starts at 07:00. 17 working days =
    # 136 h: Thu 26, Fri 27/11, then 15 more working days → Friday 18/12 17:00.
    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE)
    assert dossier.due_at == vn(2026, 12, 18, 17)
    broker.events()

    # Asked Monday 30/11 09:00; answered Wednesday 2/12 10:30. Waiting: Monday 2.5 h + 3.5 h, Tuesday
    # 8 h, Wednesday 07:00–10:30 3.5 h = 17.5 h. 18/12 17:00 + 17.5 h: Monday 21 and Tuesday 22/12
    # give 16 h, the last 1.5 h on Wednesday 23/12 → 08:30.
    progress(supplement_requested(dossier, vn(2026, 11, 30, 9), deadline=vn(2026, 12, 7, 17)))
    waiting = dossiers.get(code=dossier.code)
    assert waiting.status is Status.SUPPLEMENT_REQUESTED
    assert waiting.supplement == {"reason": "Thiếu giấy xác nhận khuyết tật", "requested_by": "chuyen-vien-ldtbxh",
                                  "requested_at": vn(2026, 11, 30, 9).astimezone(UTC).isoformat(),
                                  "deadline": vn(2026, 12, 7, 17).astimezone(UTC).isoformat()}

    clock.now = vn(2026, 12, 2, 10, 30).astimezone(UTC)
    done = dossiers.supplement(answer(dossier.code, doc("giay-to-chung-minh", "xac-nhan.png", PNG, "image/png")))

    assert done.status is Status.PROCESSING
    assert done.due_at == vn(2026, 12, 23, 8, 30)
    assert done.previous_due_at == [vn(2026, 12, 18, 17)]
    assert [d.component for d in done.documents] == ["to-khai", "giay-to-chung-minh"]
    assert [row["action"] for row in done.history][-2:] == ["supplement requested", "supplemented"]

    # A ward's dossier is worked in its town's area: bim-son's queues and routing keys.
    assert (dossier.receiving_unit, dossier.area) == (COMMUNE, "bim-son")
    (event,) = [e for e in broker.events() if e.routing_key == "bim-son.dossier.supplemented"]
    data = parse_event(event.body, event.headers, event.properties.content_type).decode(events_pb2.DossierSupplemented)
    assert (data.code, data.status, data.receiving_unit, data.area) == (
        dossier.code, int(Status.PROCESSING), COMMUNE, "bim-son")
    assert data.due_at.ToDatetime(UTC) == vn(2026, 12, 23, 8, 30)
    assert data.previous_due_at.ToDatetime(UTC) == vn(2026, 12, 18, 17)
    assert [(d.component, d.sha256) for d in data.documents] == [
        ("giay-to-chung-minh", hashlib.sha256(PNG).hexdigest())]


def test_restart_counts_the_full_duration_again_from_the_resubmission(dossiers, progress, clock):
    # Version 2 of the building permit restarts the clock. Answered Wednesday 2/12/2026 10:30:
    # 15 days = 120 h; Wednesday gives 1 h + 3.5 h, 14 working days (Thu 3/12 … Tue 22/12) 112 h,
    # the last 3.5 h on Wednesday 23/12 → 10:30.
    dossier = submit(dossiers, BUILDING_PERMIT, "bim-son")
    assert dossier.procedure_version == 2
    progress(supplement_requested(dossier, vn(2026, 11, 30, 9)))
    clock.now = vn(2026, 12, 2, 10, 30).astimezone(UTC)

    done = dossiers.supplement(answer(dossier.code, doc("ban-ve", "ban-ve.png", PNG, "image/png")))

    assert done.due_at == vn(2026, 12, 23, 10, 30)
    assert done.previous_due_at == [dossier.due_at]


def test_a_calendar_day_procedure_pauses_by_whole_days(dossiers, progress, clock):
    # Received Thursday 26/11/2026: + 25 calendar days → Monday 21/12 at closing time. Asked Monday
    # 30/11, answered Wednesday 2/12: 2 days later → Wednesday 23/12 17:00.
    dossier = submit(dossiers, DISABILITY, COMMUNE)
    assert dossier.due_at == vn(2026, 12, 21, 17)
    progress(supplement_requested(dossier, vn(2026, 11, 30, 9)))
    clock.now = vn(2026, 12, 2, 10, 30).astimezone(UTC)

    done = dossiers.supplement(answer(dossier.code, doc("giay-to-y-te")))

    assert done.due_at == vn(2026, 12, 23, 17)


# -- once, and only where allowed ----------------------------------------------------------------


def test_the_same_request_twice_is_one_supplement_and_a_reused_id_is_refused(dossiers, progress, clock, bucket):
    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE)
    progress(supplement_requested(dossier, vn(2026, 11, 30, 9)))
    clock.now = vn(2026, 12, 2, 10, 30).astimezone(UTC)
    command = answer(dossier.code, doc("giay-to-chung-minh"), fingerprint="payload-1")

    first = dossiers.supplement(command)
    stored = keys(bucket)
    clock.now = vn(2026, 12, 3, 9).astimezone(UTC)  # a retry later changes nothing
    again = dossiers.supplement(command)

    assert (again.due_at, again.documents, again.history) == (first.due_at, first.documents, first.history)
    assert [row["action"] for row in again.history].count("supplemented") == 1
    with pytest.raises(AlreadyExists, match=command.request_id):
        dossiers.supplement(replace(command, fingerprint="payload-2"))
    assert keys(bucket) == stored


def test_routing_s_repeated_or_late_request_changes_nothing(dossiers, progress, clock):
    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE)
    delivery = supplement_requested(dossier, vn(2026, 11, 30, 9))
    progress(delivery)
    progress(delivery)  # delivered twice
    twice = dossiers.get(code=dossier.code)
    assert [row["action"] for row in twice.history].count("supplement requested") == 1

    dossiers.withdraw(f"wd-{uuid.uuid4()}", dossier.code, "Không còn nhu cầu", APPLICANT.identity_number)
    progress(supplement_requested(dossier, vn(2026, 12, 1, 9)))  # too late: withdrawn
    assert dossiers.get(code=dossier.code).status is Status.WITHDRAWN


@pytest.mark.parametrize("documents, field", [
    pytest.param([], "documents", id="nothing-added"),
    pytest.param([doc("giay-phep-la")], "documents[0].component", id="unknown-component"),
    pytest.param([doc("giay-to-chung-minh", content=PNG)], "documents[0].content", id="png-claimed-pdf"),
    pytest.param([doc("giay-to-chung-minh", name="../x.pdf")], "documents[0].name", id="path-in-name"),
    pytest.param([doc("giay-to-chung-minh", content=b"%PDF-1.7\n" + b"%" * 70_000 + b"\n%%EOF\n")],
                 "documents[0].content", id="oversize"),
])
def test_a_bad_supplement_is_refused_naming_the_field_and_nothing_changes(dossiers, progress, bucket, documents,
                                                                        field):
    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE)
    progress(supplement_requested(dossier, vn(2026, 11, 30, 9)))
    before, stored = dossiers.get(code=dossier.code), keys(bucket)

    with pytest.raises(InvalidArgument) as excinfo:
        dossiers.supplement(answer(dossier.code, *documents))

    assert excinfo.value.field == field
    assert dossiers.get(code=dossier.code) == before
    assert keys(bucket) == stored


def test_a_supplement_nobody_asked_for_is_a_failed_precondition(dossiers, bucket):
    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE)
    stored = keys(bucket)
    with pytest.raises(FailedPrecondition, match=r"status 2 .*allowed from status 5"):
        dossiers.supplement(answer(dossier.code, doc("giay-to-chung-minh")))
    with pytest.raises(NotFound):
        dossiers.supplement(answer("000.00.06.H56-261126-9999", doc("giay-to-chung-minh")))
    assert keys(bucket) == stored


# -- submissions and supplements that name uploads ------------------------------------------------


def upload(dossiers: Dossiers, content: bytes, media_type: str = "application/pdf") -> str:
    return dossiers.uploads.receive(f"up-{uuid.uuid4()}", media_type, "", iter([content])).id


def test_a_submission_names_its_uploads_and_keeps_them_where_they_are(dossiers, bucket, broker):
    scan = pdf("Tờ khai, bản quét")
    upload_id = upload(dossiers, scan)

    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE, uploaded=[(upload_id, "to-khai.pdf", "to-khai")])

    (ref,) = dossier.documents
    assert (ref.name, ref.component, ref.sha256, ref.size) == ("to-khai.pdf", "to-khai",
                                                               hashlib.sha256(scan).hexdigest(), len(scan))
    assert ref.key.startswith(f"intake/uploads/{upload_id}/")
    assert bucket.get(ObjectRef(ref.key, ref.sha256, ref.size, ref.media_type)) == scan  # verified read
    received = [e for e in broker.events() if e.routing_key.endswith("dossier.received")]
    assert len(received) == 1


def test_a_supplement_names_an_upload(dossiers, progress, clock):
    dossier = submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE)
    progress(supplement_requested(dossier, vn(2026, 11, 30, 9)))
    upload_id = upload(dossiers, PNG, "image/png")

    done = dossiers.supplement(answer(dossier.code, uploaded=[(upload_id, "the-chung-minh.png", "giay-to-chung-minh")]))

    assert done.documents[-1].component == "giay-to-chung-minh"
    assert done.status is Status.PROCESSING


@pytest.mark.parametrize("entry, error, field", [
    pytest.param(("no-such-upload", "to-khai.pdf", "to-khai"), NotFound, None, id="unknown-upload"),
    pytest.param((None, "to-khai.pdf", "giay-to-chung-minh"), InvalidArgument, "documents", id="missing-required"),
    pytest.param((None, "to-khai.pdf", "khac"), InvalidArgument, "uploaded[0].component", id="unknown-component"),
    pytest.param((None, "a/b.pdf", "to-khai"), InvalidArgument, "uploaded[0].name", id="path-in-name"),
    pytest.param((None, "", "to-khai"), InvalidArgument, "uploaded[0].name", id="no-name"),
])
def test_a_submission_naming_a_bad_upload_is_refused_and_stores_no_dossier(dossiers, store, entry, error, field):
    upload_id = upload(dossiers, pdf("x"))
    with pytest.raises(error) as excinfo:
        submit(dossiers, SOCIAL_ALLOWANCE, COMMUNE, uploaded=[(entry[0] or upload_id, entry[1], entry[2])])
    if field:
        assert excinfo.value.field == field
    assert store.collection(DossierRecord).count({}) == 0


def test_an_upload_of_a_type_its_component_does_not_take_is_refused(dossiers, store):
    # The household business registration takes PDFs only; the upload is a (real) PNG.
    named = (upload(dossiers, PNG, "image/png"), "don.png", "don-de-nghi")
    request_id = f"req-{uuid.uuid4()}"
    with pytest.raises(InvalidArgument) as excinfo:
        dossiers.submit(SubmitDossier(request_id=request_id, fingerprint=request_id, procedure_code="1.001612",
                                      receiving_unit="bim-son", applicant=APPLICANT, documents=[], uploaded=[named]))
    assert excinfo.value.field == "uploaded[0].upload_id"
    assert "image/png is not accepted" in str(excinfo.value)
    assert store.collection(DossierRecord).count({}) == 0
