"""ObjectStore against a real SeaweedFS (started by the fixtures when none answers)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from motcua_dev import infra
from motcua_dev.testing import S3Endpoint

from motcua import errors
from motcua.grpcsupport import status_for
from motcua.objects import (
    IntegrityError,
    ObjectMissing,
    ObjectRef,
    ObjectStore,
    ObjectTooLarge,
    StorageUnavailable,
)

pytestmark = pytest.mark.integration

# The fixtures, re-exported (conftest.py belongs to another area).

MiB = 1024 * 1024


class GeneratedStream:
    """A file-like source of ``size`` random bytes made on demand in 1 MiB reads, never held whole;
    it hashes what it hands out."""

    def __init__(self, size: int):
        self.remaining = size
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        n = min(self.remaining if size < 0 else size, self.remaining, MiB)
        data = os.urandom(n)
        self.remaining -= n
        self.sha256.update(data)
        return data


def incoming(store: ObjectStore, prefix: str) -> list[str]:
    objects = store.client.list_objects(store.bucket, prefix=f"{prefix}/.incoming/", recursive=True)
    return [obj.object_name for obj in objects]


def test_put_get_round_trip(object_store: ObjectStore) -> None:
    data = "Giấy đề nghị — hồ sơ 01".encode()
    ref = object_store.put_bytes("intake/H56.22-250101-0001", data, "text/plain")
    digest = hashlib.sha256(data).hexdigest()
    assert ref == ObjectRef(f"intake/H56.22-250101-0001/{digest}", digest, len(data), "text/plain")
    assert object_store.get(ref) == data
    assert b"".join(object_store.open(ref, chunk_size=4)) == data
    assert ObjectRef.from_dict(ref.to_dict()) == ref
    assert object_store.exists(ref.key)


def test_same_content_same_key(object_store: ObjectStore) -> None:
    data = b"%PDF-1.7 same bytes"
    first = object_store.put_bytes("dedup", data, "application/pdf")
    second = object_store.put_bytes("dedup", data, "application/pdf")
    streamed = object_store.put_stream("dedup", io.BytesIO(data), "application/pdf")
    assert first == second == streamed
    keys = [o.object_name for o in object_store.client.list_objects(object_store.bucket, "dedup/",
                                                                    recursive=True)]
    assert keys == [first.key]


def test_stream_20_mb_without_holding_it(s3_server: S3Endpoint, object_store: ObjectStore) -> None:
    store = ObjectStore(endpoint=s3_server.endpoint, access_key=s3_server.access_key,
                        secret_key=s3_server.secret_key, bucket=object_store.bucket, part_size=5 * MiB)
    source = GeneratedStream(20 * MiB)
    tracemalloc.start()
    try:
        ref = store.put_stream("big", source, "application/octet-stream")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ref.size == 20 * MiB
    assert ref.sha256 == source.sha256.hexdigest()
    assert ref.key == f"big/{ref.sha256}"
    # One reused part buffer (5 MiB) and what one read returns, whatever the size; minio's own
    # put_object held about three parts (~15 MiB); holding the whole stream would pass 20 MiB.
    assert peak < 2 * 5 * MiB, f"put_stream held {peak / MiB:.1f} MiB"
    assert store.stat(ref.key) == ref  # the sha256 survived the server-side copy as metadata
    assert sum(len(chunk) for chunk in store.open(ref)) == ref.size  # verified while reading
    assert incoming(store, "big") == []


def test_stream_of_chunks(object_store: ObjectStore) -> None:
    chunks = [b"a" * 1000, b"", b"b" * 3000, b"c"]
    ref = object_store.put_stream("chunks", iter(chunks), "application/octet-stream", max_size=4001)
    assert object_store.get(ref) == b"".join(chunks)


@pytest.mark.parametrize("size", [100, 12 * MiB], ids=["single-part", "multipart"])
def test_max_size_exceeded_stores_nothing(s3_server: S3Endpoint, object_store: ObjectStore,
                                          size: int) -> None:
    store = ObjectStore(endpoint=s3_server.endpoint, access_key=s3_server.access_key,
                        secret_key=s3_server.secret_key, bucket=object_store.bucket, part_size=5 * MiB)
    prefix = f"limit-{size}"
    source = GeneratedStream(size)
    with pytest.raises(ObjectTooLarge):
        store.put_stream(prefix, source, "application/pdf", max_size=size - 1)
    while source.read():  # the rest of the bytes, to name the key the whole would have had
        pass
    assert not store.exists(f"{prefix}/{source.sha256.hexdigest()}")
    assert incoming(store, prefix) == []
    assert list(store.client.list_objects(store.bucket, prefix=f"{prefix}/", recursive=True)) == []
    # and no multipart upload was left open (its parts would hold the bytes)
    assert store.client._list_multipart_uploads(store.bucket, prefix=f"{prefix}/").uploads == []


@pytest.mark.parametrize("forged", [b"HELLO WORLD", b"hello world, longer"], ids=["same-size", "longer"])
def test_tampered_object_fails_verification(object_store: ObjectStore, forged: bytes) -> None:
    ref = object_store.put_bytes(f"tamper-{len(forged)}", b"hello world", "text/plain")
    object_store.client.put_object(object_store.bucket, ref.key, io.BytesIO(forged), len(forged))
    with pytest.raises(IntegrityError, match=ref.key):
        object_store.get(ref)
    with pytest.raises(IntegrityError):
        list(object_store.open(ref))


def test_missing_object(object_store: ObjectStore) -> None:
    ref = ObjectRef("nowhere/" + "0" * 64, "0" * 64, 1, "text/plain")
    with pytest.raises(ObjectMissing, match="nowhere"):
        object_store.get(ref)
    with pytest.raises(ObjectMissing):
        object_store.stat(ref.key)
    assert not object_store.exists(ref.key)


def test_presigned_get(object_store: ObjectStore) -> None:
    data = b"presigned bytes"
    ref = object_store.put_bytes("presigned", data, "text/plain")
    url = object_store.presigned_get(ref, expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data


def test_stat(object_store: ObjectStore) -> None:
    ref = object_store.put_bytes("stat", b"%PDF-1.7 stat me", "application/pdf")
    assert object_store.stat(ref.key) == ref


# -- an S3 service out of reach -------------------------------------------------------------------


class _Overloaded(BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request 503 with an S3 error document."""

    def _answer(self) -> None:
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>")
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=["stopped", "answering-503"])
def unreachable(request) -> Iterator[str]:
    """The endpoint of an S3 service that is not there (nothing listens on the port) or that
    answers every request with a server error."""
    if request.param == "stopped":
        yield f"127.0.0.1:{infra.free_port()}"
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


OPERATIONS = {
    "ensure_bucket": lambda store: store.ensure_bucket(),
    "put_bytes": lambda store: store.put_bytes("intake/d-1", b"%PDF-1.7", "application/pdf"),
    "put_stream": lambda store: store.put_stream("intake/d-1", io.BytesIO(b"%PDF-1.7"), "application/pdf"),
    "get": lambda store: store.get(ObjectRef("intake/d-1/ab", "ab" * 32, 8, "application/pdf")),
    "stat": lambda store: store.stat("intake/d-1/ab"),
    "exists": lambda store: store.exists("intake/d-1/ab"),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unreachable_s3_service_is_unavailable(unreachable: str, operation: str) -> None:
    """Regression (issue 9): a stopped S3 server made SubmitDossier fail with INTERNAL (minio's
    urllib3 MaxRetryError reached the gRPC edge unmapped) and would have made signing park its
    work at once. Now every operation raises StorageUnavailable, which is errors.Unavailable:
    UNAVAILABLE at the edge, retried by workers."""
    store = ObjectStore(endpoint=unreachable, access_key="motcua", secret_key="motcua-dev-secret",
                        bucket="motcua", http_retries=0)
    with pytest.raises(StorageUnavailable) as excinfo:
        OPERATIONS[operation](store)
    assert isinstance(excinfo.value, errors.Unavailable)
    assert status_for(excinfo.value) is grpc.StatusCode.UNAVAILABLE
    assert unreachable in str(excinfo.value)
