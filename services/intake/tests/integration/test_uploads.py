"""Streamed uploads (UploadDocument) of large scans: the Uploads use case on real SeaweedFS and both
store backends, and through a real grpcio server (build_server, the real IntakeServicer) called by
a stock grpcio client streaming chunks.

"Nothing stored" is checked on everything: each test has a fresh bucket (listed whole, temporary
keys included) and a fresh store (every UploadRecord counted).
"""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from intake.adapters.records import RECORDS, UploadRecord
from intake.application.dossiers import Dossiers
from intake.application.uploads import Uploads
from intake.domain.submission import Limits, ResolvedDocument, upload_id_for
from intake.entrypoints.api import SERVICE_NAME, IntakeServicer
from motcua.errors import AlreadyExists, InvalidArgument, NotFound
from motcua.grpcsupport import build_server
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.objects import ObjectRef, ObjectStore
from motcua.store import Store

pytestmark = pytest.mark.integration

MB = 1024 * 1024
LIMIT = 24 * MB  # per document, for these tests (a 20 MB scan fits)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(16) + b"\xff\xd9"


def pdf(size: int) -> bytes:
    """A PDF of exactly ``size`` bytes: magic, random body (incompressible, as a scan), %%EOF."""
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
    return head + os.urandom(size - len(head) - len(tail)) + tail


def chunked(content: bytes, size: int = MB) -> Iterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start:start + size]


def header(request_id: str | None = None, media_type: str = "application/pdf",
           sha256: str = "") -> intake_pb2.UploadDocumentRequest:
    return intake_pb2.UploadDocumentRequest(header=intake_pb2.UploadHeader(
        request_id=str(uuid.uuid4()) if request_id is None else request_id, media_type=media_type, sha256=sha256))


def stream(first: intake_pb2.UploadDocumentRequest | None, content: bytes,
           chunk: int = MB) -> Iterator[intake_pb2.UploadDocumentRequest]:
    """What a client sends: the header, then the content in chunks."""
    if first is not None:
        yield first
    for part in chunked(content, chunk):
        yield intake_pb2.UploadDocumentRequest(chunk=part)


@dataclass
class Stored:
    store: Store
    bucket: ObjectStore

    def objects(self) -> list[str]:
        """Every key in the (fresh) bucket, temporary ones included."""
        return sorted(o.object_name for o in self.bucket.client.list_objects(self.bucket.bucket, recursive=True))

    def records(self) -> int:
        return self.store.collection(UploadRecord).count({})

    def nothing(self) -> bool:
        return self.objects() == [] and self.records() == 0


@pytest.fixture
def stored(store: Store, bucket: ObjectStore) -> Stored:
    return Stored(store, bucket)


@pytest.fixture
def uploads(store: Store, bucket: ObjectStore, clock) -> Uploads:
    return Uploads(store, bucket, Limits(max_document_bytes=LIMIT, max_documents=5), RECORDS.uploads, clock=clock)


@dataclass
class Api:
    intake: intake_pb2_grpc.IntakeServiceStub

    def upload(self, requests: Iterator[intake_pb2.UploadDocumentRequest]) -> intake_pb2.UploadDocumentResponse:
        return self.intake.UploadDocument(requests, timeout=120)

    def refused(self, requests: Iterator[intake_pb2.UploadDocumentRequest]) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as excinfo:
            self.upload(requests)
        return excinfo.value


def serve(dossiers: Dossiers, uploads: Uploads):
    dossiers.uploads = uploads  # with the limits of these tests
    servicer = IntakeServicer(dossiers)
    server, port, _ = build_server(
        [SERVICE_NAME], lambda s: intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, s),
        "127.0.0.1", 0, reflection_on=False, workers=4)
    server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


@pytest.fixture
def api(dossiers: Dossiers, uploads: Uploads) -> Iterator[Api]:
    server, channel = serve(dossiers, uploads)
    try:
        yield Api(intake_pb2_grpc.IntakeServiceStub(channel))
    finally:
        channel.close()
        server.stop(grace=None).wait()


# -- through the gRPC API ------------------------------------------------------------------------


def test_a_20_mb_pdf_in_1_mb_chunks_round_trips(api: Api, stored: Stored, uploads: Uploads, clock):
    content = pdf(20 * MB)
    digest = hashlib.sha256(content).hexdigest()
    request_id = str(uuid.uuid4())

    answer = api.upload(stream(header(request_id, sha256=digest.upper()), content))

    assert (answer.upload_id, answer.sha256, answer.size, answer.media_type) == (
        upload_id_for(request_id), digest, len(content), "application/pdf")
    key = f"intake/uploads/{answer.upload_id}/{digest}"
    assert stored.objects() == [key]  # the temporary key is gone
    record = stored.store.collection(UploadRecord).get(answer.upload_id)
    assert {k: record[k] for k in ("request_id", "sha256", "size", "media_type", "key", "created_at")} == {
        "request_id": request_id, "sha256": digest, "size": len(content), "media_type": "application/pdf",
        "key": key, "created_at": clock.now.replace(microsecond=123000)}
    # Read back through the verifying reader (size and SHA-256 checked at the end).
    read = hashlib.sha256()
    for chunk in stored.bucket.open(ObjectRef(key, digest, len(content), "application/pdf")):
        read.update(chunk)
    assert read.hexdigest() == digest
    assert stored.bucket.stat(key).sha256 == digest

    [resolved] = uploads.resolve([(answer.upload_id, "ban-ve-scan.pdf", "ban-ve")])
    assert resolved == ResolvedDocument(upload_id=answer.upload_id, name="ban-ve-scan.pdf", component="ban-ve",
                                        media_type="application/pdf", size=len(content), sha256=digest, key=key)


@pytest.mark.parametrize("size", [pytest.param(100 * 1024, id="single-part"),
                                  pytest.param(12 * MB, id="multipart")])
def test_a_wrong_expected_sha256_is_invalid_argument_and_nothing_is_stored(api: Api, stored: Stored, size):
    content = pdf(size)
    wrong = hashlib.sha256(content + b"x").hexdigest()

    error = api.refused(stream(header(sha256=wrong), content))

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("header.sha256: "), error.details()
    assert hashlib.sha256(content).hexdigest() in error.details()
    assert stored.nothing()


def test_an_oversize_document_is_invalid_argument_and_nothing_is_stored(api: Api, stored: Stored):
    error = api.refused(stream(header(), pdf(LIMIT + 1)))

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("chunk: "), error.details()
    assert str(LIMIT) in error.details()
    assert stored.nothing()


@pytest.mark.parametrize("media_type, content", [
    pytest.param("application/pdf", PNG * 1000, id="png-bytes-claimed-pdf"),
    pytest.param("application/pdf", pdf(3 * MB)[:-7], id="pdf-cut-before-its-eof"),
    pytest.param("application/pdf", pdf(3 * MB) + os.urandom(2048), id="pdf-eof-not-in-last-kilobyte"),
    pytest.param("image/png", b"just some text, not an image" * 100, id="text-claimed-png"),
    pytest.param("image/png", JPEG, id="jpeg-bytes-claimed-png"),
    pytest.param("image/jpeg", b"\xff\xd8", id="shorter-than-the-jpeg-magic"),
])
def test_content_that_is_not_what_the_header_claims_is_refused(api: Api, stored: Stored, media_type, content):
    error = api.refused(stream(header(media_type=media_type), content))

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"chunk: is not a {media_type} file"
    assert stored.nothing()


@pytest.mark.parametrize("requests, field", [
    pytest.param([], "header", id="empty-stream"),
    pytest.param([intake_pb2.UploadDocumentRequest(chunk=b"%PDF-1.7\n")], "header", id="first-message-a-chunk"),
    pytest.param([intake_pb2.UploadDocumentRequest()], "header", id="first-message-empty"),
    pytest.param([header(), intake_pb2.UploadDocumentRequest(chunk=b"%PDF-1.7\n"), header()], "header",
                 id="a-second-header"),
    pytest.param([header(), intake_pb2.UploadDocumentRequest()], "chunk", id="a-message-with-neither"),
    pytest.param([header()], "chunk", id="header-without-chunks"),
    pytest.param([header(), intake_pb2.UploadDocumentRequest(chunk=b"")], "chunk", id="only-empty-chunks"),
    pytest.param([header(request_id="")], "header.request_id", id="no-request-id"),
    pytest.param([header(request_id="a b c d e f")], "header.request_id", id="bad-request-id"),
    pytest.param([header(media_type="")], "header.media_type", id="no-media-type"),
    pytest.param([header(media_type="image/gif")], "header.media_type", id="media-type-not-accepted"),
    pytest.param([header(sha256="abc")], "header.sha256", id="sha256-not-hex-64"),
])
def test_a_malformed_stream_is_invalid_argument_naming_the_field(api: Api, stored: Stored, requests, field):
    error = api.refused(iter(requests))

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: "), error.details()
    assert stored.nothing()


def test_a_retry_with_the_same_request_id_gets_the_same_answer(api: Api, stored: Stored):
    content = pdf(3 * MB)
    request_id = str(uuid.uuid4())
    first = api.upload(stream(header(request_id), content))
    before = stored.objects(), stored.records()

    again = api.upload(stream(header(request_id, sha256=first.sha256), content, chunk=64 * 1024))

    assert again == first
    assert (stored.objects(), stored.records()) == before == ([f"intake/uploads/{first.upload_id}/{first.sha256}"], 1)


@pytest.mark.parametrize("other", [
    pytest.param(lambda content: pdf(len(content)), id="same-size"),
    pytest.param(lambda content: content[:-7] + b"\n" + content[-7:], id="one-byte-longer"),
    pytest.param(lambda content: content[:9] + content[10:], id="one-byte-shorter"),
])
def test_the_same_request_id_with_other_content_is_already_exists(api: Api, stored: Stored, other):
    content = pdf(2 * MB)
    request_id = str(uuid.uuid4())
    api.upload(stream(header(request_id), content))
    before = stored.objects(), stored.records()

    error = api.refused(stream(header(request_id), other(content)))

    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert request_id in error.details()
    assert (stored.objects(), stored.records()) == before


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the store does not matter here
def test_the_api_side_keeps_memory_well_under_the_file_size(dossiers: Dossiers, store: Store, bucket: ObjectStore):
    """A 50 MB stream through the real server in this process: every Python allocation (client,
    grpcio's Python layer, servicer, use case, minio) is traced; the peak stays under half the file."""
    size = 50 * MB
    uploads = Uploads(store, bucket, Limits(max_document_bytes=64 * MB, max_documents=5), RECORDS.uploads)
    server, channel = serve(dossiers, uploads)
    sent = hashlib.sha256()

    def requests() -> Iterator[intake_pb2.UploadDocumentRequest]:  # made as sent, never held whole
        yield header()
        for n in range(size // MB):
            part = os.urandom(MB)
            if n == 0:
                part = b"%PDF-1.7\n" + part[9:]
            if n == size // MB - 1:
                part = part[:-7] + b"\n%%EOF\n"
            sent.update(part)
            yield intake_pb2.UploadDocumentRequest(chunk=part)

    tracemalloc.start()
    try:
        answer = intake_pb2_grpc.IntakeServiceStub(channel).UploadDocument(requests(), timeout=300)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        channel.close()
        server.stop(grace=None).wait()

    assert (answer.size, answer.sha256) == (size, sent.hexdigest())
    assert peak < 25 * 1000 * 1000, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB upload"


# -- the use case --------------------------------------------------------------------------------


def test_at_the_limit_passes_one_byte_over_is_refused(store: Store, bucket: ObjectStore, stored: Stored):
    uploads = Uploads(store, bucket, Limits(max_document_bytes=64 * 1024, max_documents=5), RECORDS.uploads)

    with pytest.raises(InvalidArgument) as excinfo:
        uploads.receive(str(uuid.uuid4()), "application/pdf", "", chunked(pdf(64 * 1024 + 1), 4096))
    assert excinfo.value.field == "chunk"
    assert stored.nothing()

    upload = uploads.receive(str(uuid.uuid4()), "application/pdf", "", chunked(pdf(64 * 1024), 4096))
    assert upload.size == 64 * 1024
    assert stored.objects() == [upload.key]


def test_the_header_is_checked_before_any_chunk_is_read(uploads: Uploads, stored: Stored):
    def chunks():
        raise AssertionError("read a chunk")
        yield b""

    with pytest.raises(InvalidArgument) as excinfo:
        uploads.receive(str(uuid.uuid4()), "text/html", "", chunks())
    assert excinfo.value.field == "header.media_type"
    assert stored.nothing()


def test_content_of_the_wrong_type_is_refused_at_its_first_chunk(uploads: Uploads, stored: Stored):
    read = []

    def chunks():
        for n in range(10):
            read.append(n)
            yield PNG if n == 0 else bytes(MB)

    with pytest.raises(InvalidArgument):
        uploads.receive(str(uuid.uuid4()), "application/pdf", "", chunks())
    assert read == [0]
    assert stored.nothing()


@pytest.mark.parametrize("same_content", [pytest.param(True, id="same-content"),
                                          pytest.param(False, id="other-content")])
def test_two_first_attempts_racing_with_one_request_id(uploads: Uploads, stored: Stored, same_content):
    """The other attempt finishes while ours streams: ours loses the insert. With the same content
    it answers as the winner; with other content it is refused and its object removed."""
    request_id = str(uuid.uuid4())
    ours, theirs = pdf(6 * MB), pdf(6 * MB)
    if same_content:
        theirs = ours
    winner = []

    def chunks():
        for n, part in enumerate(chunked(ours)):
            if n == 3:  # mid-stream, in another thread as a concurrent call would be
                t = threading.Thread(target=lambda: winner.append(
                    uploads.receive(request_id, "application/pdf", "", chunked(theirs))))
                t.start()
                t.join()
            yield part

    if same_content:
        assert uploads.receive(request_id, "application/pdf", "", chunks()) == winner[0]
    else:
        with pytest.raises(AlreadyExists):
            uploads.receive(request_id, "application/pdf", "", chunks())
    assert stored.objects() == [winner[0].key]
    assert stored.records() == 1


def test_resolve_names_the_uploads_a_submission_needs(uploads: Uploads):
    first = uploads.receive(str(uuid.uuid4()), "application/pdf", "", chunked(pdf(100 * 1024)))
    second = uploads.receive(str(uuid.uuid4()), "image/png", "", [PNG])

    resolved = uploads.resolve([(first.id, "don.pdf", "don-de-nghi"), (second.id, "anh.png", "anh-hien-trang")])

    assert [(r.upload_id, r.name, r.component, r.media_type, r.size, r.sha256, r.key) for r in resolved] == [
        (first.id, "don.pdf", "don-de-nghi", "application/pdf", first.size, first.sha256, first.key),
        (second.id, "anh.png", "anh-hien-trang", "image/png", len(PNG), second.sha256, second.key)]
    assert uploads.resolve([]) == []


def test_resolve_refuses_an_unknown_upload_id_and_bad_names(uploads: Uploads):
    known = uploads.receive(str(uuid.uuid4()), "image/png", "", [PNG])
    unknown = str(uuid.uuid4())

    with pytest.raises(NotFound) as not_found:
        uploads.resolve([(known.id, "a.png", "ban-ve"), (unknown, "b.png", "ban-ve")])
    assert str(not_found.value).startswith("uploaded[1].upload_id: ")
    assert unknown in str(not_found.value)

    for entry, field in [((known.id, "../a.png", "ban-ve"), "uploaded[0].name"),
                         ((known.id, "", "ban-ve"), "uploaded[0].name"),
                         (("", "a.png", "ban-ve"), "uploaded[0].upload_id")]:
        with pytest.raises(InvalidArgument) as excinfo:
            uploads.resolve([entry])
        assert excinfo.value.field == field
