"""The Dossiers use case against real S3 (SeaweedFS), real RabbitMQ and both store backends.

What a caller is promised: an accepted submission is stored (dossier, documents, events); a
retried one returns the first answer without storing anything twice; a reused request id with
another payload is refused; and a bad one gets a clear error with nothing stored anywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.json_format import MessageToDict

from intake.adapters.records import RECORDS, DossierRecord
from intake.application.dossiers import Dossiers, SubmitDossier
from intake.domain.dossier import Status, dossier_id_for
from intake.domain.submission import Applicant, IncomingDocument
from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import parse_event, trace_id
from motcua.messaging.outbox import Outbox, OutboxRelay
from motcua.messaging.publisher import Publisher
from motcua.objects import ObjectRef, ObjectStore
from motcua.store import Store
from motcua.unit_of_work import UnitsOfWork
from motcua.work.v1 import work_pb2

pytestmark = pytest.mark.integration

CODE_RE = re.compile(r"^000\.00\.06\.H56-\d{6}-\d{4}$")
BUILDING_PERMIT = "1.004616"  # accepts PDF, JPEG, PNG
BIRTH = "1.001193"  # birth registration, received by communes and wards
HOUSEHOLD_BUSINESS = "1.001612"  # accepts PDF only
APPLICANT = Applicant(full_name="Nguyễn Văn An", identity_number="038095001234", phone="0912345678",
                      email="an@example.vn", address="Phường Ba Đình, thị xã Bỉm Sơn")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)
LIMIT = 64 * 1024  # conftest.TEST_LIMITS.max_document_bytes
_DEFAULT = object()


def pdf(text: str = "Đơn đề nghị", size: int | None = None) -> bytes:
    body = b"%PDF-1.7\n% " + text.encode() + b"\n"
    tail = b"trailer\n<< >>\n%%EOF\n"
    if size is not None:
        body += b"%" * (size - len(body) - len(tail))
    return body + tail


def document(name: str = "don-de-nghi.pdf", media_type: str = "application/pdf", content: bytes | None = None,
             component: str = "don-de-nghi"):
    return IncomingDocument(name=name, media_type=media_type, content=pdf(name) if content is None else content,
                            component=component)


GOOD_DOCUMENTS = [document("don-de-nghi.pdf"), document("ban-ve.png", "image/png", PNG, "ban-ve")]


def submission(request_id: str | None = None, *, procedure_code: str = BUILDING_PERMIT, receiving_unit: str = "bim-son",
               applicant=_DEFAULT, documents=None, traceparent: str | None = None) -> SubmitDossier:
    """A submission; the fingerprint covers everything but the request id, as the gRPC edge's does."""
    applicant = APPLICANT if applicant is _DEFAULT else applicant
    documents = list(GOOD_DOCUMENTS) if documents is None else documents
    payload = [procedure_code, receiving_unit, vars(applicant) if applicant else None,
               [[d.name, d.media_type, d.component, hashlib.sha256(d.content).hexdigest()] for d in documents]]
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return SubmitDossier(request_id=f"req-{uuid.uuid4()}" if request_id is None else request_id,
                         fingerprint=fingerprint, procedure_code=procedure_code, receiving_unit=receiving_unit,
                         applicant=applicant, documents=documents, traceparent=traceparent)


def object_keys(bucket: ObjectStore, prefix: str | None = None) -> list[str]:
    return sorted(o.object_name for o in bucket.client.list_objects(bucket.bucket, prefix=prefix, recursive=True))


def stored(store: Store) -> list[dict]:
    return store.collection(DossierRecord).find({})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- a good submission ---------------------------------------------------------------------------


def test_good_submission_stores_dossier_documents_and_publishes(dossiers: Dossiers, store, bucket, broker):
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    command = submission(traceparent=traceparent)

    dossier = dossiers.submit(command)

    # The answer.
    assert dossier.id == dossier_id_for(command.request_id)
    assert dossier.status is Status.RECEIVED and int(dossier.status) == 2
    assert CODE_RE.match(dossier.code), dossier.code
    assert dossier.code == "000.00.06.H56-261126-0001"  # 2026-11-25T18:00Z is the 26th in Vietnam
    assert (dossier.receiving_unit, dossier.area, dossier.unit_id, dossier.procedure_code) == (
        "bim-son", "bim-son", "000.00.06.H56", BUILDING_PERMIT)
    assert dossier.applicant["identity_number"] == APPLICANT.identity_number
    assert dossier.procedure_version == 2  # the current version of 1.004616 in the sample catalog

    # The store: one dossier, as answered, with its outbox published and cleared.
    [doc] = stored(store)
    assert doc["_id"] == dossier.id and doc["code"] == dossier.code and doc["status"] == 2
    assert doc["procedure_version"] == 2
    assert doc["request_id"] == command.request_id and doc["fingerprint"] == command.fingerprint
    assert doc["outbox"] == [] and doc.get("outbox_since") is None
    assert dossiers.get(dossier_id=dossier.id) == dossiers.get(code=dossier.code)
    assert dossiers.get(code=dossier.code).received_at == dossier.received_at

    # The documents: content-addressed under intake/<dossier id>/, and they read back verified.
    expected_keys = sorted(f"intake/{dossier.id}/{sha256(d.content)}" for d in command.documents)
    assert object_keys(bucket) == expected_keys
    assert [r.key for r in dossier.documents] == [f"intake/{dossier.id}/{sha256(d.content)}" for d in command.documents]
    for ref, sent in zip(dossier.documents, command.documents, strict=True):
        assert (ref.name, ref.media_type, ref.size, ref.sha256) == (sent.name, sent.media_type, len(sent.content),
                                                                     sha256(sent.content))
        assert bucket.get(ObjectRef(ref.key, ref.sha256, ref.size, ref.media_type)) == sent.content
        assert bucket.stat(ref.key).sha256 == ref.sha256  # recorded beside the object too
        assert bucket.stat(ref.key).media_type == sent.media_type

    # The public event, as an independent subscriber of motcua.events sees it.
    [event] = broker.events()
    assert event.exchange == "motcua.events"
    assert event.routing_key == "bim-son.dossier.received"
    headers = event.headers
    assert headers["cloudEvents:specversion"] == "1.0"
    assert headers["cloudEvents:type"] == "vn.motcua.dossier.received.v1"
    assert headers["cloudEvents:source"] == "/motcua/intake"
    assert headers["cloudEvents:subject"] == dossier.code
    assert headers["cloudEvents:area"] == "bim-son"
    assert headers["cloudEvents:dataschema"] == "type.googleapis.com/motcua.events.v1.DossierReceived"
    assert headers["cloudEvents:id"]
    assert datetime.fromisoformat(headers["cloudEvents:time"]).tzinfo is not None
    assert trace_id(headers["cloudEvents:traceparent"]) == trace_id(traceparent)  # the caller's trace goes on
    assert event.properties.content_type == "application/protobuf"
    assert event.properties.delivery_mode == 2  # persistent
    cloud_event = parse_event(event.body, event.properties.headers, event.properties.content_type)
    data = cloud_event.decode(events_pb2.DossierReceived)
    assert (data.dossier_id, data.code, data.receiving_unit, data.unit_id) == (dossier.id, dossier.code, "bim-son",
                                                                         "000.00.06.H56")
    assert data.status == 2 and data.procedure_code == BUILDING_PERMIT
    assert (data.retention, bool(data.procedure_name)) == ("permanent", True)  # from the catalog, for the archive
    assert data.applicant.identity_number == APPLICANT.identity_number
    assert [d.sha256 for d in data.documents] == [r.sha256 for r in dossier.documents]
    assert data.received_at.ToDatetime(tzinfo=UTC) == dossier.received_at  # the time GetDossier tells

    # The work message that asks routing to open the workflow, on the district's own queue.
    [work] = broker.work("bim-son")
    assert work.routing_key == "routing.bim-son"
    assert work.headers["motcua-work-type"] == "routing.route_dossier"
    assert work.properties.message_id == f"route:{dossier.id}"
    body = MessageToDict(work_pb2.RouteDossier.FromString(work.body), preserving_proto_field_name=True)
    assert work.headers["motcua-work-schema"] == "motcua.work.v1.RouteDossier"
    assert (body["dossier_id"], body["code"], body["receiving_unit"], body["area"]) == (
        dossier.id, dossier.code, "bim-son", "bim-son")
    assert [d["key"] for d in body["documents"]] == [r.key for r in dossier.documents]
    assert datetime.fromisoformat(body["received_at"]) == dossier.received_at
    assert broker.events() == [] and all(n == 0 for n in broker.pending().values())


def test_codes_number_each_unit_and_vietnam_day_from_0001(dossiers: Dossiers, clock, broker):
    codes = [dossiers.submit(submission()).code for _ in range(3)]
    assert codes == [f"000.00.06.H56-261126-{n:04d}" for n in (1, 2, 3)]

    # Another unit the same day has its own sequence.
    assert dossiers.submit(submission(receiving_unit="ba-thuoc")).code == "000.00.12.H56-261126-0001"
    assert dossiers.submit(submission()).code == "000.00.06.H56-261126-0004"

    # The next day in Vietnam starts again at 0001 (17:00Z is midnight in Hanoi).
    clock.now = datetime(2026, 11, 26, 16, 59, 59, tzinfo=UTC)
    assert dossiers.submit(submission()).code == "000.00.06.H56-261126-0005"
    clock.now = datetime(2026, 11, 26, 17, 0, 0, tzinfo=UTC)
    assert dossiers.submit(submission()).code == "000.00.06.H56-261127-0001"
    assert [e.headers["cloudEvents:subject"] for e in broker.events()][-1] == "000.00.06.H56-261127-0001"


def test_the_same_request_twice_is_one_dossier(dossiers: Dossiers, store, bucket, broker, clock):
    command = submission(documents=[document("a.pdf"), document("b.png", "image/png", PNG),
                                    document("a-copy.pdf", content=pdf("a.pdf"))])  # same bytes as a.pdf
    first = dossiers.submit(command)
    keys = object_keys(bucket)
    assert len(keys) == 2  # identical bytes are one object
    assert len(broker.events()) == 1 and len(broker.work()) == 1

    again = dossiers.submit(command)
    clock.advance(days=1)  # a retry on another day still gets the first answer
    later = dossiers.submit(command)

    for retry in (again, later):
        assert (retry.id, retry.code, retry.received_at, retry.documents) == (first.id, first.code,
                                                                               first.received_at, first.documents)
    assert len(stored(store)) == 1
    assert object_keys(bucket) == keys
    assert broker.events() == [] and broker.work() == []  # published once
    # The retries took no sequence number: the next dossier of that day is 0002.
    clock.advance(days=-1)
    assert dossiers.submit(submission()).code == "000.00.06.H56-261126-0002"


@pytest.mark.parametrize("change", [
    pytest.param({"applicant": Applicant("Lê Thị Bình", "001099012345")}, id="other-applicant"),
    pytest.param({"documents": [document("don-de-nghi.pdf", content=pdf("another text"))]}, id="other-document"),
    pytest.param({"receiving_unit": "ba-thuoc"}, id="other-unit"),
])
def test_a_reused_request_id_with_another_payload_is_refused(dossiers: Dossiers, store, bucket, broker, change):
    first = dossiers.submit(submission("portal-0001"))
    before_doc, before_keys = stored(store), object_keys(bucket)
    broker.events(), broker.work()

    with pytest.raises(AlreadyExists) as excinfo:
        dossiers.submit(submission("portal-0001", **change))

    assert "portal-0001" in str(excinfo.value)
    assert stored(store) == before_doc  # not even its version moved
    assert object_keys(bucket) == before_keys
    assert all(n == 0 for n in broker.pending().values())
    assert dossiers.get(dossier_id=first.id).applicant == vars(APPLICANT)


def test_a_failed_publish_leaves_the_messages_to_the_relay_and_a_retry_gets_the_first_answer(
        store, bucket, catalog, limits, clock, publisher, broker):
    """Rule 1: the state is committed even when the broker is out of reach; the retry returns the
    first answer and publishes nothing (the first call could still be publishing: publishing here
    could publish twice); the relay publishes the pending messages."""
    unreachable = Publisher("amqp://guest:guest@127.0.0.1:1/")
    try:
        broken = Dossiers(UnitsOfWork(store, Outbox(unreachable)), bucket, catalog, limits, RECORDS, clock=clock)
        command = submission()
        first = broken.submit(command)
    finally:
        unreachable.close()
    [doc] = stored(store)
    assert len(doc["outbox"]) == 3 and doc["outbox_since"] is not None
    assert all(n == 0 for n in broker.pending().values())

    healthy = Dossiers(UnitsOfWork(store, Outbox(publisher)), bucket, catalog, limits, RECORDS, clock=clock)
    assert healthy.submit(command).code == first.code
    assert all(n == 0 for n in broker.pending().values())
    relay = OutboxRelay([store.collection(DossierRecord)], Outbox(publisher), grace=timedelta(0))
    assert relay.sweep() == 3
    assert [e.headers["cloudEvents:subject"] for e in broker.events()] == [first.code]
    assert len(broker.work()) == 1
    [doc] = stored(store)
    assert doc["outbox"] == [] and doc.get("outbox_since") is None


# -- bad input: a clear error and nothing stored -------------------------------------------------

BAD_SUBMISSIONS = [
    pytest.param({"request_id": ""}, InvalidArgument, "request_id", id="missing-request-id"),
    pytest.param({"receiving_unit": "hai-phong"}, NotFound, "hai-phong", id="unknown-unit"),
    pytest.param({"procedure_code": "9.999999"}, NotFound, "9.999999", id="unknown-procedure"),
    pytest.param({"applicant": None}, InvalidArgument, "applicant", id="missing-applicant"),
    pytest.param({"applicant": Applicant("Nguyễn Văn An", "38095001234")}, InvalidArgument,
                 "applicant.identity_number", id="bad-cccd"),
    pytest.param({"documents": []}, InvalidArgument, "documents", id="no-documents"),
    # Bad documents come after a good one: the good one must not have been uploaded either.
    pytest.param({"documents": [document(), document("trong.pdf", content=b"")]}, InvalidArgument,
                 "documents[1].content", id="empty-document"),
    pytest.param({"documents": [document(), document("lon.pdf", content=pdf(size=LIMIT + 1))]}, InvalidArgument,
                 "documents[1].content", id="oversize-document"),
    pytest.param({"documents": [document(), document("virus.pdf", content=b"MZ\x90\x00 not a pdf %%EOF")]},
                 InvalidArgument, "documents[1].content", id="pdf-that-is-not-one"),
    pytest.param({"procedure_code": HOUSEHOLD_BUSINESS,
                  "documents": [document(), document("anh.png", "image/png", PNG)]},
                 InvalidArgument, "documents[1].media_type", id="media-type-not-accepted-by-procedure"),
    pytest.param({"documents": [document("../../etc/passwd")]}, InvalidArgument, "documents[0].name",
                 id="name-with-slash"),
    pytest.param({"documents": [document(), document("don\x00.pdf")]}, InvalidArgument, "documents[1].name",
                 id="name-with-nul"),
    pytest.param({"documents": [document(), document("x.pdf", component="")]}, InvalidArgument,
                 "documents[1].component", id="document-without-component"),
    pytest.param({"documents": [document(), document("x.pdf", component="giay-chung-sinh")]}, InvalidArgument,
                 "documents[1].component", id="component-of-another-procedure"),
    pytest.param({"documents": [document("ban-ve.pdf", component="ban-ve")]}, InvalidArgument, "documents",
                 id="required-component-missing"),
    pytest.param({"documents": [document(), *[document(f"ban-ve-{n}.pdf", content=pdf(f"{n}", size=LIMIT),
                                                       component="ban-ve") for n in range(3)]]},
                 InvalidArgument, "documents", id="dossier-over-its-size-limit"),
]


@pytest.mark.parametrize("change, error, named", BAD_SUBMISSIONS)
def test_bad_input_gets_a_clear_error_and_nothing_is_stored(dossiers: Dossiers, store, bucket, broker, change,
                                                            error, named):
    command = submission(**change)
    # The pika consumer is bound before the call, so it would see anything published.
    assert all(n == 0 for n in broker.pending().values())

    with pytest.raises(error) as excinfo:
        dossiers.submit(command)

    if error is InvalidArgument:
        assert excinfo.value.field == named
    else:
        assert named in str(excinfo.value)
    assert stored(store) == []
    assert object_keys(bucket) == []  # nothing at all in the bucket
    assert all(n == 0 for n in broker.pending().values()), broker.pending()

    # No sequence number was consumed, and a failed request does not burn its (valid) request id.
    request_id = command.request_id if command.request_id.startswith("req-") else None
    good = dossiers.submit(submission(request_id))
    assert good.code == "000.00.06.H56-261126-0001"
    assert len(broker.events()) == 1 and len(broker.work()) == 1


def test_a_dossier_keeps_the_procedure_version_it_was_received_under(store, bucket, publisher, catalog, limits,
                                                                     clock, broker):
    uows = UnitsOfWork(store, Outbox(publisher))
    received = Dossiers(uows, bucket, catalog, limits, RECORDS, clock=clock).submit(submission())
    assert received.procedure_version == catalog.procedure(BUILDING_PERMIT).version == 2

    # The operator publishes version 3 of the procedure; the dossier received before stays on 2.
    current = catalog.procedure(BUILDING_PERMIT)
    versions = (*catalog.versions(BUILDING_PERMIT), replace(current, version=3))
    newer = replace(catalog, procedures={**catalog.procedures, BUILDING_PERMIT: versions})
    after = Dossiers(UnitsOfWork(store, Outbox(publisher)), bucket, newer, limits, RECORDS, clock=clock)
    assert after.get(dossier_id=received.id).procedure_version == 2
    assert after.submit(submission()).procedure_version == 3
    assert newer.procedure_version(BUILDING_PERMIT, 2) == current


# -- reading -------------------------------------------------------------------------------------


def test_get_by_id_or_code_and_clear_errors(dossiers: Dossiers):
    first = dossiers.submit(submission())
    second = dossiers.submit(submission(applicant=Applicant("Lê Thị Bình", "001099012345")))

    assert dossiers.get(dossier_id=second.id).code == second.code
    assert dossiers.get(code=first.code).id == first.id
    assert dossiers.get(code=second.code).applicant["full_name"] == "Lê Thị Bình"
    with pytest.raises(NotFound):
        dossiers.get(dossier_id=str(uuid.uuid4()))
    with pytest.raises(NotFound):
        dossiers.get(code="000.00.06.H56-261126-9999")
    with pytest.raises(InvalidArgument) as excinfo:
        dossiers.get()
    assert excinfo.value.field == "dossier_id"


def test_a_unit_is_refused_when_no_worker_serves_its_area_and_nothing_is_stored(
        store: Store, bucket: ObjectStore, publisher: Publisher, catalog, limits, clock, broker):
    """A ward's dossier goes to its town's area; a commune of an area no worker serves is refused
    with FAILED_PRECONDITION naming the unit and its area, before anything is stored or sent."""
    uows = UnitsOfWork(store, Outbox(publisher))
    served = Dossiers(uows, bucket, catalog, limits, RECORDS, clock=clock, served_areas=["bim-son"])
    birth = [document("to-khai.pdf", component="to-khai"), document("giay-chung-sinh.pdf", component="giay-chung-sinh")]
    ward = served.submit(submission(procedure_code=BIRTH, receiving_unit="phuong-ba-dinh", documents=birth))
    assert (ward.receiving_unit, ward.area) == ("phuong-ba-dinh", "bim-son")
    assert [m.routing_key for m in broker.work("bim-son")] == ["routing.bim-son"]
    assert {e.routing_key.split(".")[0] for e in broker.events()} == {"bim-son"}

    with pytest.raises(FailedPrecondition, match="xa-dien-quang.*ba-thuoc") as refused:
        served.submit(submission(procedure_code=BIRTH, receiving_unit="xa-dien-quang", documents=birth))
    assert "bim-son" in str(refused.value)
    assert store.collection(DossierRecord).count({"area": "ba-thuoc", "status": 2}) == 0
    assert broker.events() == [] and broker.work("ba-thuoc") == []


# -- form 01 ---------------------------------------------------------------------------------------


def test_form_01_meeting_routings_progress_is_rendered_sealed_and_stored_once(dossiers: Dossiers, store, bucket,
                                                                                catalog, publisher):
    """The worker's write of form 01 loses a version race to routing's progress on the same
    dossier (as happens under load): the retry records the form the first attempt stored, sealed
    once, and no other copy is left in storage."""
    from motcua_dev.testing import FakeSealer

    from intake.adapters.forms import PDF_FORMS
    from intake.application.forms import Forms

    dossier = dossiers.submit(submission())
    records = store.collection(DossierRecord)

    class SealerBeatenByProgress(FakeSealer):
        def __call__(self, pdf: bytes, unit: str, label: str = "") -> bytes:
            if not self.calls:  # routing's progress lands between the worker's read and its write
                doc = records.get(dossier.id)
                records.update_fields(dossier.id, doc["version"], {"status": int(Status.PROCESSING)})
            return super().__call__(pdf, unit, label)

    sealer = SealerBeatenByProgress()
    forms = Forms(UnitsOfWork(store, Outbox(publisher)), bucket, catalog, "https://dichvucong.example.vn", RECORDS,
                  PDF_FORMS, sealer)
    before = object_keys(bucket, f"intake/{dossier.id}/")
    forms.issue(dossier.id, "01")

    (doc,) = [d for d in stored(store) if d["_id"] == dossier.id]
    assert doc["status"] == int(Status.PROCESSING)  # the retry kept routing's progress
    assert sealer.calls == [("bim-son", f"Mẫu 01 {dossier.code}")]
    (new,) = set(object_keys(bucket, f"intake/{dossier.id}/")) - set(before)
    assert doc["receipt"]["key"] == new and doc["receipt"]["component"] == "form-01"
