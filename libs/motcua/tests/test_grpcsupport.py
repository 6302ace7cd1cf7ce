"""gRPC at the edge: a real grpcio server from ``build_server`` with a small IntakeService servicer
of the test's own over a fake application, called by a stock grpcio client."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from motcua import errors
from motcua.grpcsupport import MAX_DETAILS, build_server, request_fingerprint, status_details, status_for
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.objects import IntegrityError, ObjectMissing, StorageUnavailable
from motcua.protobufs import EARLIEST, LATEST, datetime_of, timestamp
from motcua.store.port import DuplicateKey, InvalidDocument, StoreError, VersionConflict
from motcua.types.v1 import types_pb2

SERVICE = "motcua.intake.v1.IntakeService"
TIMEOUT = 5


class FakeDossiers:
    """The application layer as the servicer sees it; raises whatever the test chose."""

    def __init__(self):
        self.error: BaseException | None = None
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def submit(self, request_id: str, fingerprint: str) -> str:
        with self._lock:
            self.requests.append((request_id, fingerprint))
        if self.error is not None:
            raise self.error
        return "d-1"

    def get(self, dossier_id: str) -> str:
        if self.error is not None:
            raise self.error
        return dossier_id


class Servicer(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self, app: FakeDossiers):
        self.app = app

    def SubmitDossier(self, request, context):
        dossier_id = self.app.submit(request.request_id, request_fingerprint(request))
        return intake_pb2.SubmitDossierResponse(dossier_id=dossier_id, code="C-1", status=1)

    def UploadDocument(self, request_iterator, context):
        parts = [request.WhichOneof("part") for request in request_iterator]  # consumed as the use case does
        return intake_pb2.UploadDocumentResponse(upload_id=f"u-{len(parts)}", size=parts.count("chunk"))

    def GetDossier(self, request, context):
        if request.code == "abort-yourself":
            context.abort(grpc.StatusCode.OUT_OF_RANGE, "the servicer's own status")
        return intake_pb2.GetDossierResponse(dossier=intake_pb2.Dossier(dossier_id=self.app.get(request.dossier_id)))


@contextlib.contextmanager
def serving(reflection_on: bool) -> Iterator[tuple[grpc.Channel, FakeDossiers, object]]:
    app = FakeDossiers()
    server, port, health = build_server(
        [SERVICE], lambda s: intake_pb2_grpc.add_IntakeServiceServicer_to_server(Servicer(app), s),
        "127.0.0.1", 0, reflection_on=reflection_on, workers=4)
    assert port > 0
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        yield channel, app, health
    finally:
        channel.close()
        server.stop(grace=None).wait(TIMEOUT)


@pytest.fixture(scope="module")
def served():
    with serving(reflection_on=True) as running:
        yield running


@pytest.fixture
def channel(served):
    return served[0]


@pytest.fixture
def app(served):
    served[1].error = None
    yield served[1]
    served[1].error = None


@pytest.fixture
def stub(channel):
    return intake_pb2_grpc.IntakeServiceStub(channel)


def get_error(stub, **request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDossier(intake_pb2.GetDossierRequest(**request), timeout=TIMEOUT)
    return info.value


# -- errors → status codes ------------------------------------------------------------------------


class DossierNotFound(errors.NotFound):
    """A service's own domain error, a subclass of a kernel error."""


KERNEL_ERRORS = [
    (errors.InvalidArgument("district", "must be a slug such as bim-son"), grpc.StatusCode.INVALID_ARGUMENT,
     "district: must be a slug such as bim-son"),
    (errors.NotFound("procedure 9.999999 is not in the catalog"), grpc.StatusCode.NOT_FOUND,
     "procedure 9.999999 is not in the catalog"),
    (DossierNotFound("no dossier with code X"), grpc.StatusCode.NOT_FOUND, "no dossier with code X"),
    (errors.AlreadyExists("request id r-1 was used for another request"), grpc.StatusCode.ALREADY_EXISTS,
     "request id r-1 was used for another request"),
    (errors.FailedPrecondition("the dossier is already returned"), grpc.StatusCode.FAILED_PRECONDITION,
     "the dossier is already returned"),
    (errors.PermissionDenied("agency X may not use district bim-son"), grpc.StatusCode.PERMISSION_DENIED,
     "agency X may not use district bim-son"),
    (errors.Conflict("changed meanwhile; retry"), grpc.StatusCode.ABORTED, "changed meanwhile; retry"),
    (VersionConflict("dossiers/d-1: not at version 3"), grpc.StatusCode.ABORTED, "dossiers/d-1: not at version 3"),
    (errors.Unavailable("object storage is out of reach"), grpc.StatusCode.UNAVAILABLE,
     "object storage is out of reach"),
    (StorageUnavailable("127.0.0.1:8333", "MaxRetryError"), grpc.StatusCode.UNAVAILABLE,
     "object storage at 127.0.0.1:8333 is unavailable (MaxRetryError); try again later"),
    (ObjectMissing("dossiers", "intake/d-1/ab"), grpc.StatusCode.DATA_LOSS,
     "object 'intake/d-1/ab' is missing from bucket 'dossiers'"),
    (IntegrityError("intake/d-1/ab", "ab" * 32, "cd" * 32), grpc.StatusCode.DATA_LOSS,
     f"object 'intake/d-1/ab' failed verification: expected {'ab' * 32}, read {'cd' * 32}"),
]


@pytest.mark.parametrize("error, code, message", KERNEL_ERRORS, ids=lambda v: type(v).__name__)
def test_each_kernel_error_maps_to_its_status_with_its_message(stub, app, error, code, message):
    assert status_for(error) is code
    app.error = error
    failure = get_error(stub, dossier_id="d-1")
    assert failure.code() is code
    assert failure.details() == message


@pytest.mark.parametrize("error", [
    StoreError("database is locked at /var/lib/motcua/intake.sqlite3"),
    DuplicateKey("dossiers: UNIQUE constraint failed: 038090000001"),
    InvalidDocument("dossiers: field 'applicant' holds 038090000001"),
    RuntimeError("secret: 038090000001"),
    KeyError("038090000001"),
    ZeroDivisionError("division by zero"),
], ids=lambda e: type(e).__name__)
def test_an_unexpected_or_storage_failure_is_internal_without_its_message(stub, app, error):
    app.error = error
    failure = get_error(stub, dossier_id="d-1")
    assert failure.code() is grpc.StatusCode.INTERNAL
    assert failure.details() == "internal error"
    assert "038090000001" not in (failure.debug_error_string() or "")


def test_errors_are_mapped_on_every_method(stub, app):
    app.error = errors.InvalidArgument("procedure_code", "is required")
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitDossier(intake_pb2.SubmitDossierRequest(request_id="r-1"), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "procedure_code: is required"


def test_a_servicer_that_aborts_keeps_its_own_status(stub, app):
    failure = get_error(stub, code="abort-yourself")
    assert failure.code() is grpc.StatusCode.OUT_OF_RANGE
    assert failure.details() == "the servicer's own status"


def test_success_passes_through(stub, app):
    reply = stub.GetDossier(intake_pb2.GetDossierRequest(dossier_id="d-42"), timeout=TIMEOUT,
                            metadata=[("x-request-id", "r-42")])
    assert reply.dossier.dossier_id == "d-42"
    reply = stub.SubmitDossier(intake_pb2.SubmitDossierRequest(request_id="r-1", procedure_code="1.004616"),
                               timeout=TIMEOUT)
    assert reply.dossier_id == "d-1" and reply.code == "C-1"


def test_the_server_stays_healthy_after_failures(stub, app):
    app.error = RuntimeError("boom")
    for _ in range(3):
        assert get_error(stub, dossier_id="d-1").code() is grpc.StatusCode.INTERNAL
    app.error = None
    assert stub.GetDossier(intake_pb2.GetDossierRequest(dossier_id="d-2"), timeout=TIMEOUT).dossier.dossier_id == "d-2"


# -- bounded status messages ----------------------------------------------------------------------

MEGABYTE = 1024 * 1024
VIETNAMESE = "Nguyễn Thị Ánh Tuyết ở phường Ngọc Trạo "  # 3-byte letters: 9 bytes each once percent-encoded

# (the error a use case raises with a huge caller value in it, the start the message must keep)
HUGE_VALUES = [
    pytest.param(errors.InvalidArgument("district", f"{'x' * MEGABYTE!r} is not a unit"), "district: 'xxx",
                 id="invalid-argument-one-word"),
    pytest.param(errors.InvalidArgument("note", VIETNAMESE * (MEGABYTE // len(VIETNAMESE))), "note: Nguyễn Thị",
                 id="invalid-argument-vietnamese-text"),
    pytest.param(errors.NotFound(f"no dossier {'0' * MEGABYTE!r}"), "no dossier '000", id="not-found-code"),
    pytest.param(errors.AlreadyExists(f"request_id {'r' * MEGABYTE!r} was already used"), "request_id 'rrr",
                 id="already-exists-request-id"),
    pytest.param(errors.PermissionDenied(f"{'ệ' * MEGABYTE} works at bim-son"), "ệệệ", id="permission-denied"),
    pytest.param(VersionConflict(f"dossiers/{'d' * MEGABYTE}: not at version 3"), "dossiers/ddd",
                 id="version-conflict"),
]


@pytest.mark.parametrize("error, start", HUGE_VALUES)
def test_a_huge_value_in_an_error_comes_back_as_a_short_prefix(stub, app, error, start):
    app.error = error
    failure = get_error(stub, dossier_id="d-1")
    assert failure.code() is status_for(error)  # not RESOURCE_EXHAUSTED: the trailer fits
    details = failure.details()
    assert details.startswith(start) and "…" in details
    assert len(details) <= MAX_DETAILS
    assert max(len(word) for word in details.split()) <= 64 + 4  # the value's first 64 characters, quoted


@pytest.mark.parametrize("message, expected", [
    ("district: 'bim-son' is not a unit", "district: 'bim-son' is not a unit"),
    (f"expected {'ab' * 32}, read {'cd' * 32}", f"expected {'ab' * 32}, read {'cd' * 32}"),  # a SHA-256 stays whole
    (f"code: {'k' * 64!r} is unknown", f"code: {'k' * 64!r} is unknown"),
    (f"code: {'k' * 67!r} is unknown", f"code: '{'k' * 64}… is unknown"),
    (f"code: {errors.quote('k' * 10_000)}; retry", f"code: {'k' * 64!r}…; retry"),  # quote() needs no second cut
    (f"id {'x' * 10_000}", f"id {'x' * 65}…"),
    ("word " * 200, ("word " * 200)[:MAX_DETAILS - 1] + "…"),
])
def test_status_details_cut_long_values_and_long_messages(message, expected):
    assert status_details(message) == expected
    assert len(status_details(message)) <= MAX_DETAILS


def test_quote_keeps_a_short_prefix_of_a_value():
    assert errors.quote("bim-son") == "'bim-son'"
    assert errors.quote("a" * 64) == repr("a" * 64)
    assert errors.quote("a" * 65) == repr("a" * 64) + "…"
    assert errors.quote("b" * MEGABYTE, limit=8) == "'bbbbbbbb'…"
    assert errors.quote(12) == "'12'"


# -- requests that do not decode -----------------------------------------------------------------

GARBAGE = [
    pytest.param(b"\xff\xff\xff\xff", "Wire format was corrupt", id="corrupt-wire-format"),
    pytest.param(b"\x0a\x05ab", "Wire format was corrupt", id="truncated-field"),
    pytest.param(b"\x0a\x02\xff\xfe", "bad UTF-8", id="string-not-utf8"),
    pytest.param(b"not a protobuf message at all" * 1000, "Wire format was corrupt", id="text"),
]


def raw_call(channel, method: str, data: bytes) -> grpc.RpcError:
    """A stock grpcio client sending bytes as they are (no serializer)."""
    call = channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(data, timeout=TIMEOUT)
    return info.value


def assert_one_log_line(caplog, method: str) -> None:
    records = [r for r in caplog.records if r.name.startswith(("grpc", "motcua"))]
    assert [(r.getMessage(), r.method, r.exc_info) for r in records] == [("undecodable request", method, None)]


@pytest.mark.parametrize("method, type_name", [("SubmitDossier", "motcua.intake.v1.SubmitDossierRequest"),
                                               ("GetDossier", "motcua.intake.v1.GetDossierRequest")])
@pytest.mark.parametrize("data, reason", GARBAGE)
def test_undecodable_bytes_are_invalid_argument_with_one_log_line(channel, app, caplog, method, type_name, data,
                                                                   reason):
    app.requests.clear()
    caplog.set_level(logging.INFO)
    failure = raw_call(channel, method, data)
    assert failure.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.details().startswith(f"request: request is not a valid {type_name}")
    assert reason in failure.details() and len(failure.details()) < 200
    assert_one_log_line(caplog, f"/{SERVICE}/{method}")
    assert app.requests == []  # the servicer never ran


def test_bytes_that_decode_reach_the_servicer(channel, app):
    call = channel.unary_unary(f"/{SERVICE}/GetDossier", request_serializer=None,
                               response_deserializer=intake_pb2.GetDossierResponse.FromString)
    reply = call(intake_pb2.GetDossierRequest(dossier_id="d-9").SerializeToString(), timeout=TIMEOUT)
    assert reply.dossier.dossier_id == "d-9"
    assert call(b"", timeout=TIMEOUT).dossier.dossier_id == ""  # the empty message is a valid request


def upload_parts(*parts: bytes) -> Iterator[bytes]:
    yield from parts


HEADER = intake_pb2.UploadDocumentRequest(header=intake_pb2.UploadHeader(request_id="r-1",
                                                                         media_type="application/pdf"))
CHUNK = intake_pb2.UploadDocumentRequest(chunk=b"%PDF-1.7")


@pytest.mark.parametrize("parts, number", [
    pytest.param([b"\xff\xff"], 1, id="first-message"),
    pytest.param([HEADER.SerializeToString(), b"\x12\x09%PDF"], 2, id="second-message-truncated"),
    pytest.param([HEADER.SerializeToString(), CHUNK.SerializeToString(), CHUNK.SerializeToString(), b"\xff"], 4,
                 id="fourth-message"),
])
def test_an_undecodable_message_of_a_client_stream_is_invalid_argument(channel, caplog, parts, number):
    caplog.set_level(logging.INFO)
    call = channel.stream_unary(f"/{SERVICE}/UploadDocument", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(upload_parts(*parts), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(
        f"request: request message {number} is not a valid motcua.intake.v1.UploadDocumentRequest")
    assert_one_log_line(caplog, f"/{SERVICE}/UploadDocument")


def test_a_decodable_client_stream_reaches_the_servicer(stub):
    reply = stub.UploadDocument(iter([HEADER, CHUNK, CHUNK]), timeout=TIMEOUT)
    assert (reply.upload_id, reply.size) == ("u-3", 2)


def test_the_server_stays_healthy_after_undecodable_requests(channel, stub, app):
    for _ in range(3):
        assert raw_call(channel, "GetDossier", b"\xff").code() is grpc.StatusCode.INVALID_ARGUMENT
    assert stub.GetDossier(intake_pb2.GetDossierRequest(dossier_id="d-3"), timeout=TIMEOUT).dossier.dossier_id == "d-3"


# -- health ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", SERVICE])
def test_health_answers_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(channel):
    with pytest.raises(grpc.RpcError) as info:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="motcua.nope.v1.X"),
                                                  timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_health_follows_the_returned_servicer():
    with serving(reflection_on=False) as (channel, _app, health):
        stub = health_pb2_grpc.HealthStub(channel)
        health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT).status == \
            health_pb2.HealthCheckResponse.SERVING


# -- reflection -----------------------------------------------------------------------------------


def list_services(channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        timeout=TIMEOUT)
    return [service.name for reply in replies for service in reply.list_services_response.service]


def test_reflection_lists_the_services_when_on(channel):
    services = list_services(channel)
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
    assert "grpc.reflection.v1alpha.ServerReflection" in services
    # A stock reflection client can resolve the methods from the server alone.
    database = ProtoReflectionDescriptorDatabase(channel)
    assert SERVICE in database.get_services()
    from google.protobuf.descriptor_pool import DescriptorPool
    pool = DescriptorPool(database)
    methods = {m.name for m in pool.FindServiceByName(SERVICE).methods}
    declared = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].methods_by_name
    assert methods == set(declared) and {"SubmitDossier", "GetDossier"} <= methods


def test_reflection_is_absent_when_off():
    with serving(reflection_on=False) as (channel, _app, _health):
        with pytest.raises(grpc.RpcError) as info:
            list_services(channel)
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        # The service itself and health still answer.
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        assert stub.GetDossier(intake_pb2.GetDossierRequest(dossier_id="d-7"), timeout=TIMEOUT).dossier.dossier_id \
            == "d-7"
        assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status \
            == health_pb2.HealthCheckResponse.SERVING


# -- the server itself ----------------------------------------------------------------------------


def test_a_port_in_use_is_refused_with_os_error():
    server, port, _ = build_server([SERVICE], lambda s: None, "127.0.0.1", 0, reflection_on=False)
    server.start()
    try:
        with pytest.raises(OSError, match=f"cannot bind gRPC server to 127.0.0.1:{port}"):
            build_server([SERVICE], lambda s: None, "127.0.0.1", port, reflection_on=False)
    finally:
        server.stop(None).wait(TIMEOUT)


# -- request fingerprints -------------------------------------------------------------------------


def submission(**overrides) -> intake_pb2.SubmitDossierRequest:
    fields = {
        "request_id": "r-1", "procedure_code": "1.004616", "district": "bim-son",
        "applicant": types_pb2.Applicant(full_name="Nguyễn Văn A", identity_number="038090000001"),
        "documents": [intake_pb2.Document(name="đơn.pdf", media_type="application/pdf", content=b"%PDF-1.7 x")],
    }
    fields.update(overrides)
    return intake_pb2.SubmitDossierRequest(**fields)


def test_fingerprint_ignores_the_request_id():
    first, retried = submission(request_id="r-1"), submission(request_id="r-2")
    assert request_fingerprint(first) == request_fingerprint(retried)
    assert len(request_fingerprint(first)) == 64 and int(request_fingerprint(first), 16) >= 0
    assert first.request_id == "r-1"  # the request itself is left alone


@pytest.mark.parametrize("change", [
    {"procedure_code": "1.004617"},
    {"district": "ba-thuoc"},
    {"applicant": types_pb2.Applicant(full_name="Nguyễn Văn B", identity_number="038090000001")},
    {"applicant": types_pb2.Applicant(full_name="Nguyễn Văn A", identity_number="038090000002")},
    {"documents": [intake_pb2.Document(name="đơn.pdf", media_type="application/pdf", content=b"%PDF-1.7 y")]},
    {"documents": []},
], ids=lambda c: next(iter(c)))
def test_fingerprint_changes_when_another_field_changes(change):
    assert request_fingerprint(submission(**change)) != request_fingerprint(submission())
    assert request_fingerprint(submission(request_id="r-9", **change)) == request_fingerprint(submission(**change))


def test_fingerprint_tells_the_requests_of_two_methods_apart():
    accept = intake_pb2.AcceptDossierRequest(request_id="r-1", code="C-1", official="B")
    refuse = intake_pb2.RefuseDossierRequest(request_id="r-1", code="C-1", official="B")
    assert accept.SerializeToString() == refuse.SerializeToString()  # the same bytes on the wire
    assert request_fingerprint(accept) != request_fingerprint(refuse)
    track, get = intake_pb2.TrackDossierRequest(code="C-1"), intake_pb2.GetDossierRequest(dossier_id="C-1")
    assert request_fingerprint(track, ignore=()) != request_fingerprint(get, ignore=())


def test_fingerprint_can_ignore_other_fields():
    assert request_fingerprint(submission(district="x"), ignore=("request_id", "district")) == \
        request_fingerprint(submission(), ignore=("request_id", "district"))
    assert request_fingerprint(submission(request_id="a"), ignore=()) != \
        request_fingerprint(submission(request_id="b"), ignore=())


def test_the_server_side_fingerprint_of_a_retry_is_the_same(stub, app):
    app.requests.clear()
    stub.SubmitDossier(submission(request_id="r-1"), timeout=TIMEOUT)
    stub.SubmitDossier(submission(request_id="r-1"), timeout=TIMEOUT)
    stub.SubmitDossier(submission(request_id="r-1", receiving_unit="ba-thuoc"), timeout=TIMEOUT)
    (_, first), (_, retry), (_, other) = app.requests
    assert first == retry == request_fingerprint(submission())
    assert other != first


# -- timestamps from callers ----------------------------------------------------------------------


@pytest.mark.parametrize("stamp, field, reason", [
    (Timestamp(seconds=0, nanos=-1), "deadline", "nanos must be in 0..999999999, not -1"),
    (Timestamp(seconds=0, nanos=1_000_000_000), "deadline", "nanos must be in 0..999999999"),
    (Timestamp(seconds=2**63 - 1), "period_end", "must lie between 1900-01-01T00:00:00Z and 2199-12-31T23:59:59Z"),
    (Timestamp(seconds=-2**63), "period_start", "must lie between"),
    (Timestamp(seconds=int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())), "period_end", "must lie between"),
    (Timestamp(seconds=int(datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())), "at", "must lie between"),
], ids=["negative-nanos", "nanos-overflow", "int64-max", "int64-min", "year-9999", "before-1900"])
def test_datetime_of_refuses_what_no_date_of_the_platform_can_be(stamp, field, reason):
    with pytest.raises(errors.InvalidArgument) as info:
        datetime_of(stamp, field)
    assert info.value.field == field and reason in info.value.reason
    assert status_for(info.value) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("instant", [EARLIEST, LATEST, datetime(2026, 10, 2, 9, 0, 0, 123000, tzinfo=UTC)],
                         ids=["earliest", "latest", "ordinary"])
def test_datetime_of_gives_back_the_instant_within_the_range(instant):
    assert datetime_of(timestamp(instant), "at") == instant
    assert datetime_of(timestamp(instant)) == instant  # the field is only for the message
