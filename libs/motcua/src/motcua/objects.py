"""Object storage over the S3 API (``minio`` client): content-addressed, verified on every read.

Keys are ``<prefix>/<sha256>``; the caller chooses the prefix (``intake/<dossier>``). The SHA-256
is also stored as object metadata (``x-amz-meta-sha256``) so an operator or a fixity sweep can
check an object without our database. Reads verify size and SHA-256 and raise
:class:`IntegrityError` on any mismatch (rule 5 of DESIGN.md).

Hashing is CPU work: an eventlet service calls ``put_stream``/``get`` through ``eventlet.tpool``.
Nothing connects at import time or in the constructor; the first request does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.error import S3Error

if TYPE_CHECKING:
    from motcua.settings import PlatformSettings

SHA256_META = "sha256"
# Parts uploaded one at a time: an upload of any size holds about three parts in memory (minio
# builds the next part while the last is still referenced; 15 MiB measured with 5 MiB parts).
DEFAULT_PART_SIZE = 8 * 1024 * 1024
READ_CHUNK = 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


class ObjectStoreError(Exception):
    """Base of the errors of this module."""


class ObjectMissing(ObjectStoreError):
    """The object (or its bucket) does not exist."""

    def __init__(self, bucket: str, key: str):
        super().__init__(f"object {key!r} is missing from bucket {bucket!r}")
        self.bucket = bucket
        self.key = key


class IntegrityError(ObjectStoreError):
    """The stored bytes are not the ones that were written (size or SHA-256 differ)."""

    def __init__(self, key: str, expected: str, actual: str):
        super().__init__(f"object {key!r} failed verification: expected {expected}, read {actual}")
        self.key = key


class ObjectTooLarge(ObjectStoreError):
    """A streamed upload went past ``max_size``; nothing was stored."""

    def __init__(self, max_size: int):
        super().__init__(f"object is larger than the limit of {max_size} bytes")
        self.max_size = max_size


@dataclass(frozen=True)
class ObjectRef:
    """What the metadata store keeps about an object: enough to find and verify it."""

    key: str
    sha256: str
    size: int
    media_type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectRef:
        return cls(
            key=data["key"], sha256=data["sha256"], size=int(data["size"]), media_type=data["media_type"]
        )


class _HashingReader:
    """File-like view of a stream that hashes, counts and enforces a size limit as minio reads."""

    def __init__(self, stream: BinaryIO | Iterable[bytes], max_size: int | None):
        self._read = stream.read if hasattr(stream, "read") else _IterReader(stream).read
        self._max_size = max_size
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._read(size)
        self.size += len(data)
        if self._max_size is not None and self.size > self._max_size:
            raise ObjectTooLarge(self._max_size)
        self.sha256.update(data)
        return data


class _IterReader:
    """Adapts an iterable of byte chunks (e.g. a gRPC upload stream) to ``read(size)``."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while not self._rest:  # an empty chunk is not the end: only exhaustion is
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._rest = chunk
        if size < 0 or size >= len(self._rest):
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return bytes(data)


class ObjectStore:
    """One bucket of an S3 service. Build it from settings, or give endpoint, keys and bucket."""

    def __init__(
        self,
        settings: PlatformSettings | None = None,
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        bucket: str | None = None,
        secure: bool | None = None,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ):
        def pick(explicit: Any, field: str, default: Any = None) -> Any:
            if explicit is not None:
                return explicit
            if settings is not None:
                return getattr(settings, field)
            if default is None:
                raise ValueError(f"ObjectStore needs settings or {field}")
            return default

        self.endpoint = pick(endpoint, "s3_endpoint")
        self.bucket = pick(bucket, "s3_bucket")
        self.part_size = part_size
        # An explicit region spares minio a GetBucketLocation round trip before each first request.
        self.client = Minio(
            self.endpoint,
            access_key=pick(access_key, "s3_access_key"),
            secret_key=pick(secret_key, "s3_secret_key"),
            secure=pick(secure, "s3_secure", False),
            region=pick(region, "s3_region", "us-east-1"),
        )

    # -- bucket ------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:  # another process created it between the two calls
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    # -- writes ------------------------------------------------------------------------------

    def put_bytes(self, prefix: str, data: bytes, media_type: str) -> ObjectRef:
        digest = hashlib.sha256(data).hexdigest()
        ref = ObjectRef(_key(prefix, digest), digest, len(data), media_type)
        # Same content, same key: a repeated put writes identical bytes. One PUT costs what asking
        # first would (a round trip), so we do not ask (this is on SubmitDossier's hot path).
        self.client.put_object(
            self.bucket, ref.key, io.BytesIO(data), len(data),
            content_type=media_type, metadata={SHA256_META: digest},
        )
        return ref

    def put_stream(
        self, prefix: str, stream: BinaryIO | Iterable[bytes], media_type: str, max_size: int | None = None
    ) -> ObjectRef:
        """Upload a stream of unknown length, hashing it on the way; memory stays at a few parts.

        The key depends on the hash, known only at the end, so the bytes go to a temporary key
        first and are then copied server-side (no second upload) to ``<prefix>/<sha256>``.
        """
        reader = _HashingReader(stream, max_size)
        incoming = f"{prefix.strip('/')}/.incoming/{uuid.uuid4().hex}"
        try:
            self.client.put_object(
                self.bucket, incoming, reader, length=-1, part_size=self.part_size,
                content_type=media_type, num_parallel_uploads=1,
            )
            ref = ObjectRef(_key(prefix, reader.sha256.hexdigest()), reader.sha256.hexdigest(),
                            reader.size, media_type)
            if not self.exists(ref.key):
                self.client.copy_object(
                    self.bucket, ref.key, CopySource(self.bucket, incoming),
                    metadata={SHA256_META: ref.sha256, "Content-Type": media_type},
                    metadata_directive=REPLACE,
                )
        finally:
            # minio aborts a failed multipart upload itself; a completed temporary goes here. A
            # failure to delete it must not hide the upload's own outcome: a leftover under
            # .incoming/ is garbage a lifecycle rule can sweep.
            with contextlib.suppress(Exception):
                self.client.remove_object(self.bucket, incoming)
        return ref

    # -- reads -------------------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> bytes:
        """The whole object, verified. For large objects prefer :meth:`open`."""
        return b"".join(self.open(ref))

    def open(self, ref: ObjectRef, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        """Chunks of the object; the last ``next()`` raises :class:`IntegrityError` on a mismatch.

        Treat the chunks as unverified until the iterator ends cleanly (write them to a
        temporary file, not straight to a client). A missing object raises here, not later.
        """
        response = self._call(ref.key, self.client.get_object, self.bucket, ref.key)
        return self._verified(ref, response, chunk_size)

    def _verified(self, ref: ObjectRef, response: Any, chunk_size: int) -> Iterator[bytes]:
        digest, size = hashlib.sha256(), 0
        try:
            for chunk in response.stream(chunk_size):
                digest.update(chunk)
                size += len(chunk)
                if size > ref.size:
                    raise IntegrityError(ref.key, f"{ref.size} bytes", f"more than {ref.size}")
                yield chunk
        finally:
            response.close()
            response.release_conn()
        if size != ref.size:
            raise IntegrityError(ref.key, f"{ref.size} bytes", f"{size} bytes")
        if digest.hexdigest() != ref.sha256:
            raise IntegrityError(ref.key, f"sha256 {ref.sha256}", f"sha256 {digest.hexdigest()}")

    def stat(self, key: str) -> ObjectRef:
        """The object as the store describes it; ``sha256`` is the recorded one, not re-computed."""
        info = self._call(key, self.client.stat_object, self.bucket, key)
        recorded = info.metadata.get(f"x-amz-meta-{SHA256_META}", "")
        return ObjectRef(key, recorded, info.size, info.content_type or "application/octet-stream")

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectMissing:
            return False
        return True

    def presigned_get(self, ref: ObjectRef, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL anyone can GET until it expires; the downloader should check ``ref.sha256``."""
        return self.client.presigned_get_object(self.bucket, ref.key, expires=expires)

    def _call(self, key: str, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise ObjectMissing(self.bucket, key) from exc
            raise


def _key(prefix: str, digest: str) -> str:
    return f"{prefix.strip('/')}/{digest}"
