"""Every RPC of every api, fuzzed through a stock grpcio client against the platform running as
processes: requests generated from the protobuf descriptors (motcua_dev.fuzzing), raw bytes that do not
decode, and UploadDocument streams. Each call must end with a clear status (never INTERNAL,
UNKNOWN, UNAVAILABLE: motcua_dev.fuzzing.CLEAR_STATUSES) and a bounded message; a refused call must leave the
service's store as it was; every process must still run afterwards.

Profiles: short in `make test` (30 examples per test, derandomized), long in `make fuzz`
(MOTCUA_FUZZ_PROFILE=long: 10,000; MOTCUA_FUZZ_EXAMPLES overrides both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st
from motcua_dev.fuzzing import CLEAR_STATUSES, fuzz_settings, messages, method_path, methods, raw_requests

from motcua.archive.v1 import archive_pb2
from motcua.catalog.v1 import catalog_pb2
from motcua.grpcsupport import MAX_DETAILS
from motcua.intake.v1 import intake_pb2
from motcua.notify.v1 import notify_pb2
from motcua.routing.v1 import routing_pb2
from motcua.signing.v1 import signing_pb2

pytestmark = pytest.mark.fuzz

SERVICES = {intake_pb2.DESCRIPTOR.services_by_name["IntakeService"]: "intake",
            catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"]: "intake",
            routing_pb2.DESCRIPTOR.services_by_name["RoutingService"]: "routing",
            notify_pb2.DESCRIPTOR.services_by_name["SubscriptionService"]: "notify",
            signing_pb2.DESCRIPTOR.services_by_name["SigningService"]: "signing",
            archive_pb2.DESCRIPTOR.services_by_name["ArchiveService"]: "archive"}
METHODS = methods(*SERVICES)
UNARY = [m for m in METHODS if not m.client_streaming]
UPLOAD = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].methods_by_name["UploadDocument"]
VALIDATE = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].methods_by_name["ValidateDocument"]


def _name(method: MethodDescriptor) -> str:
    return f"{method.containing_service.name}.{method.name}"


def _named(request: Any) -> tuple[str, ...]:
    """The codes and ids a request names (whose records a refused call must leave unchanged)."""
    found: list[str] = []
    for item in request if isinstance(request, list) else [request]:
        if isinstance(item, Message):
            found += [getattr(item, f) for f in ("code", "dossier_id") if f in item.DESCRIPTOR.fields_by_name]
    return tuple(n for n in found if n)


def check_call(fuzz, kind: str, method: MethodDescriptor, invoke: Callable[[], Any],
               request: Any) -> grpc.StatusCode:
    service = SERVICES[method.containing_service]
    names = _named(request)
    before = fuzz.snapshot(service, names)
    try:
        invoke()
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    fuzz.calls[f"{_name(method)} {kind}"][code.name] += 1
    assert code.name in CLEAR_STATUSES, f"{_name(method)} answered {code.name}: {details[:300]}"
    if code is not grpc.StatusCode.OK:
        assert details.strip(), f"{_name(method)}: {code.name} without a message"
        assert len(details) <= MAX_DETAILS, f"{_name(method)}: a {len(details)}-character message"
        assert fuzz.snapshot(service, names) == before, f"{_name(method)} stored something for a refused call " \
                                                        f"({code.name}: {details[:200]})"
    return code


def _still_running(fuzz) -> None:
    assert not fuzz.processes_alive(), f"dead processes: {fuzz.processes_alive()}"


@pytest.mark.parametrize("method", UNARY, ids=_name)
def test_generated_requests(fuzz, method: MethodDescriptor):
    output = method.output_type._concrete_class
    with grpc.insecure_channel(fuzz.address(SERVICES[method.containing_service])) as channel:
        call = channel.unary_unary(method_path(method), request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=output.FromString)

        @fuzz_settings()
        @given(request=messages(method.input_type, fuzz.hints))
        def fuzz_one(request: Message) -> None:
            check_call(fuzz, "generated", method, lambda: call(request, timeout=120), request)

        fuzz_one()
    _still_running(fuzz)


@pytest.mark.parametrize("method", METHODS, ids=_name)
def test_undecodable_bytes(fuzz, method: MethodDescriptor):
    """Bytes sent as they are (identity serializers), to every method, streaming ones included."""
    with grpc.insecure_channel(fuzz.address(SERVICES[method.containing_service])) as channel:
        if method.client_streaming:
            call = channel.stream_unary(method_path(method))
            requests = st.lists(raw_requests(), min_size=1, max_size=4)
        else:
            call = channel.unary_unary(method_path(method))
            requests = raw_requests()

        @fuzz_settings()
        @given(raw=requests)
        def fuzz_one(raw: bytes | list[bytes]) -> None:
            invoke = (lambda: call(iter(raw), timeout=120)) if method.client_streaming else \
                (lambda: call(raw, timeout=120))
            check_call(fuzz, "raw bytes", method, invoke, [])

        fuzz_one()
    _still_running(fuzz)


def uploads(hints: dict[str, list[Any]]) -> st.SearchStrategy[list[Message]]:
    """UploadDocument streams: any messages in any order, and header-first streams of chunks that
    may start like a PDF."""
    part = messages(UPLOAD.input_type, hints)
    header = messages(intake_pb2.UploadHeader.DESCRIPTOR, hints).map(
        lambda h: intake_pb2.UploadDocumentRequest(header=h))
    chunk = st.one_of(st.binary(max_size=256), st.just(hints["content"][0]),
                      st.builds(lambda b: b"%PDF-1.7\n" + b, st.binary(max_size=256))).map(
        lambda c: intake_pb2.UploadDocumentRequest(chunk=c))
    return st.one_of(st.lists(part, max_size=6),
                     st.builds(lambda h, chunks: [h, *chunks], header, st.lists(chunk, max_size=6)))


def test_upload_streams(fuzz):
    with grpc.insecure_channel(fuzz.address("intake")) as channel:
        call = channel.stream_unary(method_path(UPLOAD), request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=intake_pb2.UploadDocumentResponse.FromString)

        @fuzz_settings()
        @given(stream=uploads(fuzz.hints))
        def fuzz_one(stream: list[Message]) -> None:
            check_call(fuzz, "stream", UPLOAD, lambda: call(iter(stream), timeout=120), stream)

        fuzz_one()
    _still_running(fuzz)


def validations(hints: dict[str, list[Any]]) -> st.SearchStrategy[list[Message]]:
    """ValidateDocument streams: any messages in any order, and chunks that may start like a PDF
    (a real unsigned PDF among them: no signature is INVALID_ARGUMENT too)."""
    part = messages(VALIDATE.input_type, hints)
    chunk = st.one_of(st.binary(max_size=256), st.just(hints["content"][0]),
                      st.builds(lambda b: b"%PDF-1.7\n" + b + b"\n%%EOF\n", st.binary(max_size=256))).map(
        lambda c: signing_pb2.ValidateDocumentRequest(chunk=c))
    return st.one_of(st.lists(part, max_size=6), st.lists(chunk, max_size=6))


def test_validate_document_streams(fuzz):
    with grpc.insecure_channel(fuzz.address("signing")) as channel:
        call = channel.stream_unary(method_path(VALIDATE), request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=signing_pb2.ValidateDocumentResponse.FromString)

        @fuzz_settings()
        @given(stream=validations(fuzz.hints))
        def fuzz_one(stream: list[Message]) -> None:
            check_call(fuzz, "stream", VALIDATE, lambda: call(iter(stream), timeout=120), stream)

        fuzz_one()
    _still_running(fuzz)
