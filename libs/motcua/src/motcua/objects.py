"""Object storage over the S3 API (``minio`` client): content-addressed, verified on every read.

Keys are ``<prefix>/<sha256>``; the caller chooses the prefix (``intake/<dossier>``). The SHA-256
is also stored as object metadata (``x-amz-meta-sha256``) so an operator or a fixity sweep can
check an object without our database. Reads verify size and SHA-256 and raise
:class:`IntegrityError` on any mismatch (rule 5 of DESIGN.md).

An S3 service out of reach (refused or dropped connections, timeouts, 5xx answers, once minio's
own retries are spent) raises :class:`StorageUnavailable`, a :class:`motcua.errors.Unavailable`:
the gRPC edge answers UNAVAILABLE (the caller may retry) and a worker retries the message.

Hashing is CPU work: an eventlet service calls ``put_stream``/``get`` through ``eventlet.tpool``.
Nothing connects at import time or in the constructor; the first request does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Part
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.retention import Retention
from urllib3.exceptions import HTTPError as TransportError

from motcua import metrics
from motcua.errors import Unavailable

if TYPE_CHECKING:
    from motcua.settings import PlatformSettings

SHA256_META = "sha256"
# Parts uploaded one at a time from one reused buffer: an upload of any size holds about one part
# in memory (minio's own put_object held about three: 15 MiB measured with 5 MiB parts).
DEFAULT_PART_SIZE = 8 * 1024 * 1024
READ_CHUNK = 1024 * 1024
# Connections to S3 kept for reuse. minio keeps 10: an api process's 16 gRPC threads storing
# documents at once opened a connection per request beyond the 10th and threw it away after
# ("Connection pool is full, discarding connection"), a TCP handshake per document under load.
HTTP_POOL_SIZE = 32
# Retries of a refused connection or a 5xx answer before StorageUnavailable (minio's default: with
# its backoff, about 6 s against a stopped S3 service).
HTTP_RETRIES = 5
_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


class ObjectStoreError(Exception):
    """Base of the errors of this module."""


class StorageUnavailable(ObjectStoreError, Unavailable):
    """The S3 service did not answer, or answered with a server error: nothing can be said about
    the object, and trying again later may succeed."""

    def __init__(self, endpoint: str, reason: str):
        super().__init__(f"object storage at {endpoint} is unavailable ({reason}); try again later")
        self.endpoint = endpoint


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


@dataclass(frozen=True)
class ObjectVersion:
    """One version of a key in a versioned (object-locked) bucket."""

    key: str
    version_id: str
    size: int
    is_latest: bool
    is_delete_marker: bool = False


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
        http_retries: int = HTTP_RETRIES,
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
            http_client=_http_client(HTTP_POOL_SIZE, http_retries),
        )

    # -- bucket ------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        with self._reachable():
            self._ensure_bucket()

    def _ensure_bucket(self) -> None:
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
        with self._reachable():
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
        with self._reachable():
            return self._put_stream(prefix, reader, incoming, media_type)

    def _put_stream(self, prefix: str, reader: _HashingReader, incoming: str, media_type: str) -> ObjectRef:
        try:
            self._upload(incoming, reader, media_type)
            ref = ObjectRef(_key(prefix, reader.sha256.hexdigest()), reader.sha256.hexdigest(),
                            reader.size, media_type)
            if not self.exists(ref.key):
                self.client.copy_object(
                    self.bucket, ref.key, CopySource(self.bucket, incoming),
                    metadata={SHA256_META: ref.sha256, "Content-Type": media_type},
                    metadata_directive=REPLACE,
                )
        finally:
            # _upload aborts a failed multipart upload; a completed temporary goes here. A
            # failure to delete it must not hide the upload's own outcome: a leftover under
            # .incoming/ is garbage a lifecycle rule can sweep.
            with contextlib.suppress(Exception):
                self.client.remove_object(self.bucket, incoming)
        return ref

    def _upload(self, key: str, reader: _HashingReader, media_type: str) -> None:
        """The stream to ``key`` through one reused buffer of ``part_size``: one PUT when it fits,
        else a multipart upload, aborted if reading fails (a refused or oversized stream, a
        client gone), so that no object is ever made of a stream that did not end well.

        minio's ``put_object`` of a stream of unknown length holds about three parts at once
        (it concatenates what it reads, then slices off one byte to learn where the stream ends,
        and the previous part is still referenced meanwhile); here a single buffer is filled in
        place and handed to the HTTP request as a view, so an upload of any size holds about one
        part. This uses minio's multipart calls (``_create_multipart_upload``, ``_upload_part``,
        ``_complete_multipart_upload``, ``_abort_multipart_upload``), the ones its own
        ``put_object`` makes; the pinned minio version is checked by the tests."""
        client = self.client
        headers = {"Content-Type": media_type}
        buffer = bytearray(self.part_size)
        filled = _fill(reader, buffer)
        if filled < len(buffer):  # all of it in hand: a single PUT
            client._put_object(self.bucket, key, memoryview(buffer)[:filled], dict(headers))
            return
        upload_id = client._create_multipart_upload(self.bucket, key, dict(headers))
        parts: list[Part] = []
        try:
            while filled:
                number = len(parts) + 1
                etag = client._upload_part(self.bucket, key, memoryview(buffer)[:filled], None, upload_id,
                                           number)
                parts.append(Part(number, etag))
                filled = _fill(reader, buffer)
            client._complete_multipart_upload(self.bucket, key, upload_id, parts)
        except BaseException:
            with contextlib.suppress(Exception):  # the reason to stop matters more than the abort
                client._abort_multipart_upload(self.bucket, key, upload_id)
            raise

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
            for chunk in self._reachable_stream(response.stream(chunk_size)):
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

    # -- write-once storage (S3 Object Lock; versioned buckets) --------------------------------

    def ensure_locked_bucket(self) -> None:
        """The bucket, created with Object Lock (and so versioning) enabled. An existing bucket
        without Object Lock is refused: write-once cannot be switched on afterwards."""
        with self._reachable():
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket, object_lock=True)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            try:
                config = self.client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                raise ObjectStoreError(f"bucket {self.bucket!r} has no Object Lock ({exc.code})") from exc
            if config is None:
                raise ObjectStoreError(f"bucket {self.bucket!r} has no Object Lock")

    def put_locked(self, key: str, stream: BinaryIO, size: int, sha256: str, media_type: str,
                   retain_until: datetime, mode: str = "GOVERNANCE", legal_hold: bool = False) -> str:
        """Store ``size`` bytes of ``stream`` under ``key`` with a retention (``GOVERNANCE`` or
        ``COMPLIANCE``) until ``retain_until``; the new version's id. Larger than a part, the
        bytes go by multipart upload, one part in memory at a time."""
        with self._reachable():
            result = self.client.put_object(
                self.bucket, key, stream, size, content_type=media_type, metadata={SHA256_META: sha256},
                part_size=max(self.part_size, 5 * 1024 * 1024), retention=Retention(mode, retain_until),
                legal_hold=legal_hold)
        if not result.version_id:
            raise ObjectStoreError(f"bucket {self.bucket!r} returned no version id: is it versioned?")
        return str(result.version_id)

    def versions(self, key: str) -> list[ObjectVersion]:
        """Every version of exactly ``key`` (delete markers included), newest first."""
        with self._reachable():
            listed = self.client.list_objects(self.bucket, prefix=key, include_version=True)
            return [ObjectVersion(o.object_name, str(o.version_id), int(o.size or 0), str(o.is_latest) == "true"
                                  or o.is_latest is True, bool(o.is_delete_marker))
                    for o in listed if o.object_name == key]

    def open_version(self, key: str, version_id: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        """Chunks of one version, unverified (the caller hashes them)."""
        response = self._call(key, self.client.get_object, self.bucket, key, 0, 0, None, None, version_id)

        def chunks() -> Iterator[bytes]:
            try:
                yield from self._reachable_stream(response.stream(chunk_size))
            finally:
                response.close()
                response.release_conn()
        return chunks()

    def hash_version(self, key: str, version_id: str) -> tuple[str, int]:
        """SHA-256 and size of one version, read now."""
        digest, size = hashlib.sha256(), 0
        for chunk in self.open_version(key, version_id):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def retention(self, key: str, version_id: str) -> tuple[str, datetime] | None:
        """(mode, retain-until) of a version, None when it has none."""
        try:
            found = self._call(key, self.client.get_object_retention, self.bucket, key, version_id)
        except S3Error as exc:
            if exc.code in ("NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"):
                return None
            raise
        return (found.mode, found.retain_until_date) if found is not None else None

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        method = self.client.enable_object_legal_hold if on else self.client.disable_object_legal_hold
        self._call(key, method, self.bucket, key, version_id)

    def legal_hold(self, key: str, version_id: str) -> bool:
        return bool(self._call(key, self.client.is_object_legal_hold_enabled, self.bucket, key, version_id))

    def remove_version(self, key: str, version_id: str, bypass_governance: bool = False) -> None:
        """Delete one version (refused by the server while it is locked, unless GOVERNANCE is
        bypassed by an identity allowed to)."""
        from minio.deleteobjects import DeleteObject

        with self._reachable():
            if not bypass_governance:
                self.client.remove_object(self.bucket, key, version_id=version_id)
                return
            errors = list(self.client.remove_objects(self.bucket, [DeleteObject(key, version_id)],
                                                     bypass_governance_mode=True))
        if errors:
            raise ObjectStoreError(f"version {version_id} of {key!r} not removed: {errors[0].message}")

    def presigned_get_version(self, key: str, version_id: str | None,
                              expires: timedelta = timedelta(minutes=5)) -> str:
        return self.client.presigned_get_object(self.bucket, key, expires=expires, version_id=version_id)

    def _call(self, key: str, method: Any, *args: Any) -> Any:
        with self._reachable():
            try:
                return method(*args)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    raise ObjectMissing(self.bucket, key) from exc
                raise

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turns "the S3 service is not there" into :class:`StorageUnavailable`: a connection
        refused, reset or timed out (urllib3's errors, after the client's retries), a 5xx answer
        (minio's ServerError, a non-XML 5xx, or an S3 error reply with a 5xx status). Everything
        else (a missing object, a refused key, the caller's own reader failing) passes as is."""
        try:
            yield
        except TransportError as exc:
            raise StorageUnavailable(self.endpoint, type(exc).__name__) from exc
        except ServerError as exc:
            raise StorageUnavailable(self.endpoint, f"HTTP {exc.status_code}") from exc
        except InvalidResponseError as exc:
            if _status(exc) < 500:
                raise
            raise StorageUnavailable(self.endpoint, f"HTTP {_status(exc)}") from exc
        except S3Error as exc:
            if _status(exc) < 500:
                raise
            raise StorageUnavailable(self.endpoint, f"HTTP {_status(exc)} {exc.code}") from exc

    def _reachable_stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        with self._reachable():
            yield from chunks


def _status(exc: Exception) -> int:
    """The HTTP status of a minio error, 0 when it has none."""
    status = getattr(getattr(exc, "response", None), "status", None) or getattr(exc, "_code", 0)
    try:
        return int(status)
    except (TypeError, ValueError):
        return 0


def _fill(reader: _HashingReader, buffer: bytearray) -> int:
    """Read into ``buffer`` until it is full or the stream ends; how many bytes were read."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        data = reader.read(len(buffer) - filled)
        if not data:
            break
        view[filled:filled + len(data)] = data
        filled += len(data)
    return filled


class _CountedPool(urllib3.PoolManager):
    """Every request minio makes passes here: the one place S3 requests are counted (a retry
    inside urllib3 is the same request)."""

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        metrics.s3_request(method)
        return super().urlopen(method, url, redirect=redirect, **kw)


def _http_client(pool_size: int, retries: int = HTTP_RETRIES) -> urllib3.PoolManager:
    """minio's own default client (timeouts, retries, certificates), with a larger pool."""
    timeout = 5 * 60
    return _CountedPool(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        maxsize=pool_size,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def _key(prefix: str, digest: str) -> str:
    return f"{prefix.strip('/')}/{digest}"
