"""Intake's gRPC API as an agency sees it: the real IntakeServicer in a grpcio server (build_server,
in this process) wired by build_dossiers to SQLite, SeaweedFS and RabbitMQ, called with a stock
grpcio client through the generated stubs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from motcua_dev.testing import S3Endpoint, drop_bucket, new_bucket_store, rpc_error

from intake.adapters.records import DossierRecord
from intake.application.dossiers import Dossiers
from intake.config import IntakeSettings
from intake.domain.dossier import Status
from intake.entrypoints.api import SERVICE_NAME, IntakeServicer, build_dossiers
from motcua.grpcsupport import MAX_DETAILS, build_server
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.messaging.envelope import trace_id
from motcua.messaging.outbox import Outbox
from motcua.messaging.publisher import Publisher
from motcua.objects import ObjectStore
from motcua.runtime import Infrastructure
from motcua.store import Store, open_store
from motcua.types.v1 import types_pb2

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024
PDF = b"%PDF-1.7\n% don de nghi\ntrailer\n<< >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)
BIG_PDF = PDF[:-7] + b"%" * (LIMIT - len(PDF)) + PDF[-7:]  # exactly at the document limit


@dataclass
class Api:
    intake: intake_pb2_grpc.IntakeServiceStub
    health: health_pb2_grpc.HealthStub
    store: Store
    bucket: ObjectStore
    dossiers: Dossiers  # the use cases behind the servicer: what intake's worker does, for the tests
    channel: grpc.Channel  # for calls with raw bytes

    def counts(self) -> tuple[int, int]:
        """Dossiers in the store and objects in the bucket."""
        objects = sum(1 for _ in self.bucket.client.list_objects(self.bucket.bucket, recursive=True))
        return self.store.collection(DossierRecord).count({}), objects


@pytest.fixture(scope="module")
def api(tmp_path_factory, s3_endpoint: S3Endpoint, vhost_uri: str) -> Iterator[Api]:
    bucket = new_bucket_store(s3_endpoint, prefix="intake-api")
    settings = IntakeSettings.load(
        amqp_uri=vhost_uri, mongo_uri=None, data_dir=tmp_path_factory.mktemp("intake-api"),
        max_document_bytes=LIMIT, max_documents=5, max_dossier_bytes=3 * LIMIT,
        **s3_endpoint.settings_overrides(bucket.bucket))
    publisher = Publisher(settings.amqp_uri)
    infra = Infrastructure(settings=settings, store=open_store(settings), objects=bucket, publisher=publisher,
                           outbox=Outbox(publisher))
    dossiers = build_dossiers(settings, infra)
    servicer = IntakeServicer(dossiers)
    server, port, _ = build_server(
        [SERVICE_NAME], lambda s: intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, s),
        "127.0.0.1", 0, reflection_on=True, workers=4)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Api(intake_pb2_grpc.IntakeServiceStub(channel), health_pb2_grpc.HealthStub(channel), infra.store,
                  bucket, dossiers, channel)
    finally:
        channel.close()
        server.stop(grace=None).wait()
        infra.close()
        drop_bucket(bucket)


def request(**changes) -> intake_pb2.SubmitDossierRequest:
    fields = {
        "request_id": str(uuid.uuid4()),
        "procedure_code": "1.004616",
        "receiving_unit": "bim-son",
        "applicant": types_pb2.Applicant(full_name="Nguyễn Văn An", identity_number="038095001234",
                                         email="an@example.vn"),
        "documents": [intake_pb2.Document(name="don-de-nghi.pdf", media_type="application/pdf", content=PDF,
                                          component="don-de-nghi"),
                      intake_pb2.Document(name="ban-ve.png", media_type="image/png", content=PNG, component="ban-ve")],
    }
    fields.update(changes)
    return intake_pb2.SubmitDossierRequest(**{k: v for k, v in fields.items() if v is not None})


def pdf_document(name: str = "don.pdf", content: bytes = PDF, media_type: str = "application/pdf",
                 component: str = "don-de-nghi"):
    return intake_pb2.Document(name=name, media_type=media_type, content=content, component=component)



def test_health_is_serving(api: Api):
    for service in ("", SERVICE_NAME):
        answer = api.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_submit_then_get_by_id_and_by_code(api: Api, broker):
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    sent = request()

    answer = api.intake.SubmitDossier(sent, timeout=10, metadata=[("traceparent", traceparent)])

    assert answer.status == types_pb2.DOSSIER_STATUS_RECEIVED
    assert answer.code.startswith("000.00.06.H56-") and len(answer.code) == len("000.00.06.H56-261126-0001")
    assert answer.received_at.seconds > 0
    by_id = api.intake.GetDossier(intake_pb2.GetDossierRequest(dossier_id=answer.dossier_id), timeout=10).dossier
    by_code = api.intake.GetDossier(intake_pb2.GetDossierRequest(code=answer.code), timeout=10).dossier
    assert by_id == by_code
    assert (by_id.dossier_id, by_id.code, by_id.status) == (answer.dossier_id, answer.code, answer.status)
    assert (by_id.receiving_unit, by_id.area, by_id.district, by_id.unit_id, by_id.procedure_code) == (
        "bim-son", "bim-son", "bim-son", "000.00.06.H56", "1.004616")
    assert by_id.received_at == answer.received_at
    assert by_id.applicant == sent.applicant
    assert [(d.name, d.media_type, d.size) for d in by_id.documents] == [
        (d.name, d.media_type, len(d.content)) for d in sent.documents]
    assert all(d.key == f"intake/{answer.dossier_id}/{d.sha256}" for d in by_id.documents)

    [event] = broker.events()
    assert event.headers["cloudEvents:subject"] == answer.code
    assert trace_id(event.headers["cloudEvents:traceparent"]) == trace_id(traceparent)
    assert [w.properties.message_id for w in broker.work("bim-son")] == [f"route:{answer.dossier_id}"]


def test_a_retry_gets_the_first_answer_and_a_reused_request_id_is_refused(api: Api, broker):
    sent = request()
    first = api.intake.SubmitDossier(sent, timeout=10)
    before = api.counts()
    broker.events()

    assert api.intake.SubmitDossier(sent, timeout=10) == first
    assert api.counts() == before
    assert broker.events() == []

    changed = request(request_id=sent.request_id, documents=[pdf_document(content=PDF + b"\n")])
    error = rpc_error(api.intake.SubmitDossier, changed)
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert sent.request_id in error.details()
    assert api.counts() == before
    assert broker.events() == []


@pytest.mark.parametrize("changes, field", [
    pytest.param({"request_id": ""}, "request_id", id="missing-request-id"),
    pytest.param({"applicant": None}, "applicant", id="missing-applicant"),
    pytest.param({"applicant": types_pb2.Applicant(full_name="An", identity_number="0380-9500-1234")},
                 "applicant.identity_number", id="bad-cccd"),
    pytest.param({"documents": []}, "documents", id="no-documents"),
    pytest.param({"documents": [pdf_document(), pdf_document(content=b"")]}, "documents[1].content",
                 id="empty-document"),
    pytest.param({"documents": [pdf_document(content=PDF[:-7] + b"%" * LIMIT + PDF[-7:])]}, "documents[0].content",
                 id="oversize-document"),
    pytest.param({"documents": [pdf_document(), pdf_document(content=b"<html>not a pdf</html>")]},
                 "documents[1].content", id="pdf-that-is-not-one"),
    pytest.param({"procedure_code": "1.001612", "documents": [pdf_document("anh.png", PNG, "image/png")]},
                 "documents[0].media_type", id="media-type-not-accepted"),
    pytest.param({"documents": [pdf_document("../don.pdf")]}, "documents[0].name", id="name-with-slash"),
    pytest.param({"documents": [pdf_document("don\x1b[31m.pdf")]}, "documents[0].name", id="name-with-escape"),
    pytest.param({"documents": [pdf_document(), pdf_document(component="")]}, "documents[1].component",
                 id="document-without-component"),
    pytest.param({"documents": [pdf_document(), pdf_document(component="to-khai")]}, "documents[1].component",
                 id="component-of-another-procedure"),
    pytest.param({"procedure_code": "1.001612", "documents": [pdf_document()]}, "documents",
                 id="required-component-missing"),
    pytest.param({"documents": [pdf_document(), *[pdf_document(f"ban-ve-{n}.pdf", BIG_PDF, component="ban-ve")
                                                  for n in range(3)]]},
                 "documents", id="dossier-over-its-size-limit"),
])
def test_bad_input_is_invalid_argument_naming_the_field(api: Api, broker, changes, field):
    before = api.counts()
    error = rpc_error(api.intake.SubmitDossier, request(**changes))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: "), error.details()
    assert api.counts() == before
    assert all(n == 0 for n in broker.pending().values())


@pytest.mark.parametrize("changes, named", [
    pytest.param({"receiving_unit": "hai-phong"}, "hai-phong", id="unknown-unit"),
    pytest.param({"procedure_code": "9.999999"}, "9.999999", id="unknown-procedure"),
])
def test_unknown_district_or_procedure_is_not_found(api: Api, broker, changes, named):
    before = api.counts()
    error = rpc_error(api.intake.SubmitDossier, request(**changes))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert named in error.details()
    assert api.counts() == before
    assert all(n == 0 for n in broker.pending().values())


CERTIFICATION = [pdf_document("ban-chinh.pdf", component="ban-chinh"), pdf_document("ban-sao.pdf", component="ban-sao")]


# (procedure, unit, documents, the status) — a procedure is received at units of its catalog level
@pytest.mark.parametrize("procedure, unit, documents, status", [
    pytest.param("1.004616", "thanh-hoa", None, grpc.StatusCode.FAILED_PRECONDITION, id="district-at-province"),
    pytest.param("1.004616", "van-phong-dang-ky-dat-dai", None, grpc.StatusCode.FAILED_PRECONDITION,
                 id="district-at-province-agency"),
    pytest.param("1.004616", "phuong-ngoc-trao", None, grpc.StatusCode.FAILED_PRECONDITION, id="district-at-commune"),
    pytest.param("2.000815", "bim-son", CERTIFICATION, grpc.StatusCode.FAILED_PRECONDITION, id="commune-at-district"),
    pytest.param("2.000815", "thanh-hoa", CERTIFICATION, grpc.StatusCode.FAILED_PRECONDITION,
                 id="commune-at-province"),
    pytest.param("1.004616", "ba-thuoc", None, grpc.StatusCode.OK, id="district-at-district"),
    pytest.param("2.000815", "xa-luong-ngoai", CERTIFICATION, grpc.StatusCode.OK, id="commune-at-commune"),
])
def test_a_procedure_is_accepted_only_at_units_of_its_level(api: Api, broker, procedure, unit, documents, status):
    before = api.counts()
    sent = request(procedure_code=procedure, receiving_unit=unit, **({"documents": documents} if documents else {}))
    if status is grpc.StatusCode.OK:
        answer = api.intake.SubmitDossier(sent, timeout=10)
        got = api.intake.GetDossier(intake_pb2.GetDossierRequest(code=answer.code), timeout=10).dossier
        assert (got.receiving_unit, got.district) == (unit, unit)
        return
    error = rpc_error(api.intake.SubmitDossier, sent)
    assert error.code() is status
    details = error.details()
    assert details.startswith(f"receiving_unit: procedure {procedure} "), details
    assert f"not received at {unit} " in details, details
    level = "district" if procedure == "1.004616" else "commune"
    assert details.endswith(f"received at units of level {level}"), details
    assert api.counts() == before
    assert all(n == 0 for n in broker.pending().values())


@pytest.mark.parametrize("get, status", [
    pytest.param(intake_pb2.GetDossierRequest(dossier_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND,
                 id="unknown-id"),
    pytest.param(intake_pb2.GetDossierRequest(code="000.00.06.H56-261126-9999"), grpc.StatusCode.NOT_FOUND,
                 id="unknown-code"),
    pytest.param(intake_pb2.GetDossierRequest(), grpc.StatusCode.INVALID_ARGUMENT, id="neither-id-nor-code"),
])
def test_get_dossier_errors(api: Api, get, status):
    error = rpc_error(api.intake.GetDossier, get)
    assert error.code() is status
    assert error.details()
    if status is grpc.StatusCode.INVALID_ARGUMENT:
        assert error.details().startswith("dossier_id: ")


# -- huge values are not echoed ------------------------------------------------------------------

HUGE = "0" * (1024 * 1024)  # a 1 MB field: echoed whole it would make a trailer the client refuses
LONG_ID = "r" * 128  # the longest request id intake takes


def assert_short_message(error: grpc.RpcError, status: grpc.StatusCode, start: str, value: str) -> None:
    """The status, the message starting with its field or subject, and the value quoted to its first
    64 characters (then an ellipsis), nothing longer."""
    details = error.details()
    assert error.code() is status, (error.code(), details[:200])
    assert details.startswith(start), details
    assert f"{value[:64]!r}…" in details, details
    assert len(details) <= MAX_DETAILS and max(len(w) for w in details.split()) <= 68


# (rpc, request, status, the message's start, the value it quotes)
HUGE_VALUE_CASES = [
    pytest.param("GetDossier", intake_pb2.GetDossierRequest(code=HUGE), grpc.StatusCode.NOT_FOUND, "no dossier '",
                 HUGE, id="get-by-code"),
    pytest.param("GetDossier", intake_pb2.GetDossierRequest(dossier_id=HUGE), grpc.StatusCode.NOT_FOUND,
                 "no dossier '", HUGE, id="get-by-id"),
    pytest.param("TrackDossier", intake_pb2.TrackDossierRequest(code=HUGE), grpc.StatusCode.NOT_FOUND,
                 "no dossier '", HUGE, id="track"),
    pytest.param("AcceptDossier", intake_pb2.AcceptDossierRequest(request_id="r-accept-huge", code=HUGE,
                                                                  official="B"),
                 grpc.StatusCode.NOT_FOUND, "no dossier '", HUGE, id="accept"),
    pytest.param("WithdrawDossier", intake_pb2.WithdrawDossierRequest(request_id="r-withdraw-huge", code=HUGE,
                                                                      reason="x", identity_number="1"),
                 grpc.StatusCode.NOT_FOUND, "no dossier '", HUGE, id="withdraw"),
    pytest.param("SubmitDossier", request(receiving_unit=HUGE), grpc.StatusCode.NOT_FOUND, "unit '", HUGE,
                 id="submit-unknown-unit"),
    pytest.param("SubmitDossier", request(procedure_code=HUGE), grpc.StatusCode.NOT_FOUND, "procedure '", HUGE,
                 id="submit-unknown-procedure"),
    pytest.param("SubmitDossier", request(uploaded=[intake_pb2.UploadedDocument(upload_id=HUGE, name="a.pdf",
                                                                                component="ban-ve")]),
                 grpc.StatusCode.NOT_FOUND, "uploaded[0].upload_id: no upload '", HUGE, id="submit-unknown-upload"),
]


@pytest.mark.parametrize("rpc, sent, status, start, value", HUGE_VALUE_CASES)
def test_a_huge_value_comes_back_as_a_short_prefix(api: Api, rpc, sent, status, start, value):
    assert_short_message(rpc_error(getattr(api.intake, rpc), sent), status, start, value)


def test_a_reused_long_request_id_is_quoted_short(api: Api):
    first = request(request_id=LONG_ID)
    api.intake.SubmitDossier(first, timeout=10)
    error = rpc_error(api.intake.SubmitDossier, request(request_id=LONG_ID, district="ba-thuoc"))
    assert_short_message(error, grpc.StatusCode.ALREADY_EXISTS, "request_id '", LONG_ID)


def test_a_huge_document_name_is_refused_by_its_field(api: Api):
    error = rpc_error(api.intake.SubmitDossier, request(documents=[pdf_document(name=HUGE + ".pdf")]))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("documents[0].name: ") and len(error.details()) < 100


# -- the desk's and the applicant's actions, table-driven ------------------------------------------


def online_dossier(api: Api) -> str:
    """The code of a fresh online dossier (status 1, waiting for the desk)."""
    return api.intake.SubmitDossier(request(channel=intake_pb2.CHANNEL_ONLINE), timeout=10).code


def desk_dossier(api: Api) -> str:
    return api.intake.SubmitDossier(request(), timeout=10).code


def rid() -> str:
    return str(uuid.uuid4())


def test_an_unknown_channel_is_invalid_argument(api: Api):
    before = api.counts()
    error = rpc_error(api.intake.SubmitDossier, request(channel=99))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("channel: ")
    assert api.counts() == before


# (rpc, request built from the dossier's code, expected status, the start of the message)
ACTION_CASES = [
    pytest.param("AcceptDossier", lambda code: intake_pb2.AcceptDossierRequest(code=code, official="Lê Văn Bình"),
                 grpc.StatusCode.INVALID_ARGUMENT, "request_id: ", id="accept-without-request-id"),
    pytest.param("AcceptDossier", lambda code: intake_pb2.AcceptDossierRequest(request_id=rid(), code=code),
                 grpc.StatusCode.INVALID_ARGUMENT, "official: ", id="accept-without-official"),
    pytest.param("AcceptDossier", lambda code: intake_pb2.AcceptDossierRequest(request_id=rid(), official="B"),
                 grpc.StatusCode.INVALID_ARGUMENT, "code: ", id="accept-without-code"),
    pytest.param("AcceptDossier", lambda code: intake_pb2.AcceptDossierRequest(
        request_id=rid(), code="000.00.06.H56-261126-9999", official="B"), grpc.StatusCode.NOT_FOUND,
        "no dossier", id="accept-unknown-dossier"),
    pytest.param("RefuseDossier", lambda code: intake_pb2.RefuseDossierRequest(request_id=rid(), code=code,
                                                                               official="B", reasons=["  "]),
                 grpc.StatusCode.INVALID_ARGUMENT, "reasons: ", id="refuse-without-reasons"),
    pytest.param("WithdrawDossier", lambda code: intake_pb2.WithdrawDossierRequest(
        request_id=rid(), code=code, identity_number="038095001234"), grpc.StatusCode.INVALID_ARGUMENT,
        "reason: ", id="withdraw-without-reason"),
    pytest.param("SupplementDossier", lambda code: intake_pb2.SupplementDossierRequest(request_id="short", code=code),
                 grpc.StatusCode.INVALID_ARGUMENT, "request_id: ", id="supplement-malformed-request-id"),
    pytest.param("TrackDossier", lambda code: intake_pb2.TrackDossierRequest(), grpc.StatusCode.INVALID_ARGUMENT,
                 "code: ", id="track-without-code"),
    pytest.param("TrackDossier", lambda code: intake_pb2.TrackDossierRequest(code="000.00.06.H56-261126-9999"),
                 grpc.StatusCode.NOT_FOUND, "no dossier", id="track-unknown-code"),
]


@pytest.mark.parametrize("rpc, build, status, message", ACTION_CASES)
def test_bad_action_requests_get_a_clear_status_and_change_nothing(api: Api, broker, rpc, build, status, message):
    code = online_dossier(api)
    before, dossier = api.counts(), api.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10)
    broker.events()

    error = rpc_error(getattr(api.intake, rpc), build(code))

    assert error.code() is status
    assert message in error.details(), error.details()
    assert api.counts() == before
    assert api.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10) == dossier
    assert broker.events() == []


# (what the dossier is made into first, the action, the reason FAILED_PRECONDITION must give)
STATE_CASES = [
    pytest.param(desk_dossier, lambda code: ("AcceptDossier", intake_pb2.AcceptDossierRequest(
        request_id=rid(), code=code, official="B")), "status 2", id="accept-an-accepted-dossier"),
    pytest.param(desk_dossier, lambda code: ("RefuseDossier", intake_pb2.RefuseDossierRequest(
        request_id=rid(), code=code, official="B", reasons=["Thiếu bản vẽ"])), "status 2",
        id="refuse-an-accepted-dossier"),
    pytest.param(desk_dossier, lambda code: ("SupplementDossier", intake_pb2.SupplementDossierRequest(
        request_id=rid(), code=code, documents=[pdf_document(component="ban-ve")])), "allowed from status 5",
        id="supplement-unasked"),
    pytest.param(online_dossier, lambda code: ("WithdrawDossier", intake_pb2.WithdrawDossierRequest(
        request_id=rid(), code=code, reason="Không cần nữa", identity_number="038095001234")),
        "status 1", id="withdraw-before-acceptance"),
]


@pytest.mark.parametrize("make, action, reason", STATE_CASES)
def test_an_action_not_allowed_in_the_dossier_s_status_is_a_failed_precondition(api: Api, broker, make, action,
                                                                                 reason):
    code = make(api)
    before = api.counts()
    broker.events()
    rpc, sent = action(code)

    error = rpc_error(getattr(api.intake, rpc), sent)

    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert code in error.details() and reason in error.details(), error.details()
    assert api.counts() == before
    assert broker.events() == []


def test_withdrawal_by_someone_else_is_permission_denied(api: Api):
    code = desk_dossier(api)
    error = rpc_error(api.intake.WithdrawDossier, intake_pb2.WithdrawDossierRequest(
        request_id=rid(), code=code, reason="Không cần nữa", identity_number="038095009999"))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


def test_accept_twice_with_one_request_id_is_one_acceptance_and_a_reused_id_is_refused(api: Api, broker):
    code = online_dossier(api)
    broker.events()
    accept = intake_pb2.AcceptDossierRequest(request_id=rid(), code=code, official="Lê Văn Bình")

    first = api.intake.AcceptDossier(accept, timeout=10).dossier
    events = broker.events()
    again = api.intake.AcceptDossier(accept, timeout=10).dossier

    assert (again.status, again.due_at, again.history) == (first.status, first.due_at, first.history)
    assert [e.routing_key for e in events] == ["bim-son.dossier.received"]
    assert broker.events() == []
    reused = intake_pb2.AcceptDossierRequest(request_id=accept.request_id, code=code, official="Someone else")
    assert rpc_error(api.intake.AcceptDossier, reused).code() is grpc.StatusCode.ALREADY_EXISTS


def test_track_shows_progress_without_personal_data(api: Api):
    code = desk_dossier(api)
    tracked = api.intake.TrackDossier(intake_pb2.TrackDossierRequest(code=code), timeout=10)
    assert (tracked.code, tracked.status) == (code, types_pb2.DOSSIER_STATUS_RECEIVED)
    assert tracked.due_at.seconds > tracked.received_at.seconds > 0
    assert [s.action for s in tracked.steps] == ["submitted", "received"]
    wire = tracked.SerializeToString()
    assert b"038095001234" not in wire and "Nguyễn Văn An".encode() not in wire


# -- idempotency of every state-changing RPC, table-driven -----------------------------------------
#
# The same request id with the same payload gets the first answer — even after the dossier moved on
# (routing's progress, mirrored by intake's worker) — and changes nothing; the same request id with
# any other payload (another field, another method) is ALREADY_EXISTS and changes nothing.


def progressed(status: Status) -> Callable[[Api, str], None]:
    """What intake's worker does when routing's progress event arrives."""
    def change(api: Api, code: str) -> None:
        api.dossiers.follow_progress(code, status, f"progress {int(status)}", datetime.now(UTC), f"ev-{uuid.uuid4()}")
    return change


def accepted(api: Api, code: str) -> None:
    api.intake.AcceptDossier(intake_pb2.AcceptDossierRequest(request_id=rid(), code=code, official="Lê Văn Bình"),
                             timeout=10)


def nothing(api: Api, code: str) -> None:
    pass


def asked_to_supplement(api: Api) -> str:
    code = desk_dossier(api)
    api.dossiers.record_supplement_request(code, "Thiếu bản vẽ", "cv-bim-son", datetime.now(UTC), None,
                                           f"ev-{uuid.uuid4()}")
    return code


def no_dossier(api: Api) -> str:
    return ""


SUBMIT = request(request_id="")  # one payload for every run (its request id is set per run)
ONLINE = request(request_id="", channel=intake_pb2.CHANNEL_ONLINE)


def submission(base: intake_pb2.SubmitDossierRequest, **changes) -> Callable[[str, str], object]:
    def build(code: str, request_id: str) -> intake_pb2.SubmitDossierRequest:
        sent = intake_pb2.SubmitDossierRequest()
        sent.CopyFrom(base)
        sent.request_id = request_id
        for name, value in changes.items():
            if isinstance(value, list):
                del getattr(sent, name)[:]
                getattr(sent, name).extend(value)
            elif name == "applicant":
                sent.applicant.CopyFrom(value)
            else:
                setattr(sent, name, value)
        return sent
    return build


def accept(official: str = "Lê Văn Bình"):
    return "AcceptDossier", lambda code, r: intake_pb2.AcceptDossierRequest(request_id=r, code=code, official=official)


def refuse(reasons=("Thiếu bản vẽ",), official: str = "Lê Văn Bình"):
    return "RefuseDossier", lambda code, r: intake_pb2.RefuseDossierRequest(request_id=r, code=code, official=official,
                                                                            reasons=list(reasons))


def withdraw(reason: str = "Không cần nữa", identity_number: str = "038095001234"):
    return "WithdrawDossier", lambda code, r: intake_pb2.WithdrawDossierRequest(
        request_id=r, code=code, reason=reason, identity_number=identity_number)


def supplement(*documents: intake_pb2.Document):
    documents = documents or (pdf_document("ban-ve.pdf", component="ban-ve"),)
    return "SupplementDossier", lambda code, r: intake_pb2.SupplementDossierRequest(
        request_id=r, code=code, documents=list(documents))


@dataclass(frozen=True)
class Idempotency:
    prepare: Callable[[Api], str]  # the dossier's code ("" when the RPC makes it)
    call: tuple[str, Callable[[str, str], object]]  # (rpc, request from the code and the request id)
    meanwhile: Callable[[Api, str], None]  # how the dossier changes between the first call and the retry
    others: dict[str, tuple[str, Callable[[str, str], object]]]  # other payloads under the same request id


IDEMPOTENCY = {
    "submit-desk": Idempotency(no_dossier, ("SubmitDossier", submission(SUBMIT)), progressed(Status.PROCESSING), {
        "other-district": ("SubmitDossier", submission(SUBMIT, district="ba-thuoc")),
        "other-applicant": ("SubmitDossier", submission(SUBMIT, applicant=types_pb2.Applicant(
            full_name="Nguyễn Văn Bình", identity_number="038095001234"))),
        "other-document": ("SubmitDossier", submission(SUBMIT, documents=[pdf_document(content=PDF + b" ")])),
        "other-channel": ("SubmitDossier", submission(SUBMIT, channel=intake_pb2.CHANNEL_ONLINE)),
    }),
    "submit-online": Idempotency(no_dossier, ("SubmitDossier", submission(ONLINE)), accepted, {
        "other-channel": ("SubmitDossier", submission(ONLINE, channel=intake_pb2.CHANNEL_POST)),
        "other-procedure": ("SubmitDossier", submission(ONLINE, procedure_code="1.001612")),
        "accept-with-its-id": accept(),  # the submission's own row carries its fingerprint too
    }),
    "accept": Idempotency(online_dossier, accept(), progressed(Status.PROCESSING), {
        "other-official": accept("Trần Thị Cúc"),
        "refuse-with-its-id": refuse(),
        "refuse-with-its-id-and-its-bytes": refuse(reasons=()),  # the same encoding as the accept, another method
        "withdraw-with-its-id": withdraw(),
    }),
    "refuse": Idempotency(online_dossier, refuse(), nothing, {
        "other-reasons": refuse(("Thiếu bản vẽ", "Sai mẫu đơn")),
        "other-official": refuse(official="Trần Thị Cúc"),
        "accept-with-its-id": accept(),
    }),
    "withdraw": Idempotency(desk_dossier, withdraw(), nothing, {
        "other-reason": withdraw("Đổi ý"),
        "other-identity-number": withdraw(identity_number="038095009999"),
        "accept-with-its-id": accept(),
    }),
    "supplement": Idempotency(asked_to_supplement, supplement(), progressed(Status.RESULT_READY), {
        "other-document": supplement(pdf_document("ban-ve.pdf", content=PDF + b" ", component="ban-ve")),
        "one-more-document": supplement(pdf_document("ban-ve.pdf", component="ban-ve"),
                                        pdf_document("ban-ve-2.pdf", content=PDF + b"2", component="ban-ve")),
        "withdraw-with-its-id": withdraw(),
    }),
}


def code_of(answer) -> str:
    return answer.code if hasattr(answer, "code") and answer.code else answer.dossier.code


@pytest.mark.parametrize("case", IDEMPOTENCY.values(), ids=IDEMPOTENCY.keys())
def test_a_retry_gets_the_first_answer_even_after_the_dossier_changed(api: Api, broker, case: Idempotency):
    rpc, build = case.call
    request_id, code = rid(), case.prepare(api)
    first = getattr(api.intake, rpc)(build(code, request_id), timeout=10)
    code = code_of(first)
    case.meanwhile(api, code)
    now = api.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10)
    before = api.counts()
    broker.events()

    again = getattr(api.intake, rpc)(build(code, request_id), timeout=10)

    assert again == first
    assert api.counts() == before and broker.events() == []
    assert api.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10) == now


@pytest.mark.parametrize("case, other",
                         [(case, other) for case in IDEMPOTENCY.values() for other in case.others.values()],
                         ids=[f"{name}-{other}" for name, case in IDEMPOTENCY.items() for other in case.others])
def test_the_same_request_id_with_another_payload_is_already_exists(api: Api, broker, case: Idempotency, other):
    rpc, build = case.call
    request_id, code = rid(), case.prepare(api)
    code = code_of(getattr(api.intake, rpc)(build(code, request_id), timeout=10))
    now = api.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10)
    before = api.counts()
    broker.events()
    other_rpc, other_build = other

    error = rpc_error(getattr(api.intake, other_rpc), other_build(code, request_id))

    assert error.code() is grpc.StatusCode.ALREADY_EXISTS, error.details()
    assert request_id in error.details()
    assert api.counts() == before and broker.events() == []
    assert api.intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10) == now


# UploadDocument: a client stream, idempotent by its request id and the content it carried.
SCAN = PDF[:-7] + b"%" * 3000 + PDF[-7:]


def upload(request_id: str, content: bytes = SCAN, media_type: str = "application/pdf", chunk: int = 1000):
    yield intake_pb2.UploadDocumentRequest(header=intake_pb2.UploadHeader(request_id=request_id,
                                                                          media_type=media_type))
    for start in range(0, len(content), chunk):
        yield intake_pb2.UploadDocumentRequest(chunk=content[start:start + chunk])


@pytest.mark.parametrize("other", [
    pytest.param({"content": SCAN[:-7] + b"% \n%%EOF\n"}, id="other-content"),
    pytest.param({"content": SCAN[:2000]}, id="cut-content"),
    pytest.param({"content": PNG, "media_type": "image/png"}, id="other-media-type"),
])
def test_an_upload_retry_gets_the_first_answer_and_other_content_is_already_exists(api: Api, other):
    request_id = rid()
    first = api.intake.UploadDocument(upload(request_id), timeout=10)
    before = api.counts()
    assert api.intake.UploadDocument(upload(request_id, chunk=700), timeout=10) == first  # chunked otherwise
    error = rpc_error(api.intake.UploadDocument, upload(request_id, **other))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS and request_id in error.details()
    assert api.counts() == before


# -- bytes that are not a request ----------------------------------------------------------------

UNARY_METHODS = [m.name for m in intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].methods
                 if not m.client_streaming]
GARBAGE = b"\xff\xff\xff\xff not a protobuf message"


@pytest.mark.parametrize("method", UNARY_METHODS)
def test_undecodable_bytes_to_any_method_are_invalid_argument(api: Api, method):
    call = api.channel.unary_unary(  # a stock client sending raw bytes
        f"/{SERVICE_NAME}/{method}", request_serializer=None, response_deserializer=None)
    before = api.counts()
    error = rpc_error(call, GARBAGE)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("request: request is not a valid motcua.intake.v1.")
    assert len(error.details()) < 160
    assert api.counts() == before


@pytest.mark.parametrize("stream, number", [
    pytest.param([GARBAGE], 1, id="garbage-header"),
    pytest.param([next(upload("r-garbage-upload-1")).SerializeToString(), GARBAGE], 2, id="garbage-chunk"),
    pytest.param([m.SerializeToString() for m in upload("r-garbage-upload-2", chunk=1000)][:3] + [GARBAGE], 4,
                 id="garbage-after-chunks"),
])
def test_an_undecodable_message_in_an_upload_stream_is_invalid_argument_and_stores_nothing(api: Api, stream, number):
    call = api.channel.stream_unary(f"/{SERVICE_NAME}/UploadDocument", request_serializer=None,
                                    response_deserializer=None)
    before = api.counts()
    error = rpc_error(call, iter(stream))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"request: request message {number} is not a valid "
                                      "motcua.intake.v1.UploadDocumentRequest"), error.details()
    assert api.counts() == before
