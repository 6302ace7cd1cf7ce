"""Streamed uploads of large documents (UploadDocument), and what a submission names by upload id.

A scan of any size goes to object storage chunk by chunk and is checked on the way; a submission or
a supplement then names it by its upload id (``UploadedDocument``) instead of carrying its bytes.

**Nothing refused stays stored.** The checks run inside the stream that ``ObjectStore.put_stream``
reads: the content's leading bytes as soon as they arrive, and — when the caller's stream ends but
before our stream reports its end — the PDF trailer, emptiness and the expected SHA-256. A refusal
therefore raises in the middle of ``put_stream``'s upload: minio never sends a single-part upload
whose bytes it could not read and aborts a multipart one, ``put_stream`` removes its temporary
object, and the final key is never written. A size over the limit is refused the same way by
``put_stream`` itself (:class:`ObjectTooLarge`). A retry of a recorded upload is only hashed and
compared, never stored.

One refusal comes after the object is written: two first attempts with the same request id racing
with different content. The loser's insert fails on the unique id. Its object's key,
``intake/uploads/<upload id>/<sha256>``, can only be named by an upload with this id and this
content, and the winner's record names another SHA-256: the loser deletes it, knowing that no
upload refers to it. (With the same content both wrote the same key, which the winner's record
names: it stays, and the loser answers as the winner did.)

**Memory.** Nothing holds the file: chunks pass through, hashed as they go; the content check keeps
a few leading bytes and a 1 KiB tail. ``put_stream`` holds about three parts of the multipart
upload, so uploads use S3's smallest part size (5 MiB): about 15 MiB whatever the file's size.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime

from intake.domain.submission import (
    ContentCheck,
    Limits,
    ResolvedDocument,
    Upload,
    check_file_name,
    check_upload_header,
    upload_id_for,
)
from motcua.errors import AlreadyExists, InvalidArgument, NotFound, quote
from motcua.objects import ObjectStore, ObjectTooLarge
from motcua.store.port import Collection, DuplicateKey, Mapper, Store
from motcua.store.schema import utc_ms

log = logging.getLogger(__name__)
UPLOAD_PREFIX = "intake/uploads"
# S3's smallest multipart part: put_stream holds about three parts in memory while it uploads.
UPLOAD_PART_SIZE = 5 * 1024 * 1024


class Uploads:
    def __init__(self, store: Store, objects: ObjectStore, limits: Limits, records: Mapper,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._records = records  # Upload ⇄ document (intake.adapters.records.RECORDS.uploads)
        self._uploads: Collection = store.collection(records.schema)
        # The same bucket and client, with smaller parts (the memory an upload holds is ~3 parts).
        self._objects = copy.copy(objects)
        self._objects.part_size = min(objects.part_size, UPLOAD_PART_SIZE)
        self._limits = limits
        self._clock = clock

    def receive(self, request_id: str, media_type: str, expected_sha256: str,
                chunks: Iterable[bytes]) -> Upload:
        """Store one streamed document, checked by its content, its size and (when given) its
        SHA-256. Idempotent by request id: the same id with the same content returns the first
        answer; with other content it is refused (AlreadyExists)."""
        expected = check_upload_header(request_id, media_type, expected_sha256)
        upload_id = upload_id_for(request_id)
        existing = self._uploads.get(upload_id)
        if existing is not None:
            return self._repeat(existing, media_type, expected, chunks)

        checked = _checked(chunks, ContentCheck(media_type), expected)
        try:
            ref = self._objects.put_stream(f"{UPLOAD_PREFIX}/{upload_id}", checked, media_type,
                                           max_size=self._limits.max_document_bytes)
        except ObjectTooLarge as exc:
            raise InvalidArgument("chunk", f"the document is larger than the limit of {exc.max_size} bytes") from None
        upload = Upload(id=upload_id, request_id=request_id, sha256=ref.sha256, size=ref.size,
                        media_type=media_type, key=ref.key, created_at=utc_ms(self._clock()))
        try:
            stored = self._uploads.insert(self._records.to_document(upload))
        except DuplicateKey:
            # A first attempt with the same request id finished while ours ran.
            winner = self._uploads.get(upload_id)
            if winner is None:
                raise
            if winner["key"] != upload.key:
                # Our key holds our sha256 under this upload id: no record names it (see above).
                self._remove_unreferenced(upload.key)
            return self._repeat(winner, media_type, expected, (), digest=upload.sha256, size=upload.size)
        log.info("document uploaded", extra={"upload_id": upload_id, "size": upload.size})
        return self._records.from_document(stored)

    def resolve(self, uploaded: Sequence[tuple[str, str, str]]) -> list[ResolvedDocument]:
        """The uploads a submission names, as ``(upload_id, name, component)``, with what the
        submission needs of each. Check them against the procedure with ``check_documents(...,
        uploaded=...)``."""
        resolved = []
        for index, (upload_id, name, component) in enumerate(uploaded):
            where = f"uploaded[{index}]"
            if not upload_id:
                raise InvalidArgument(f"{where}.upload_id", "is required")
            check_file_name(name, f"{where}.name")
            doc = self._uploads.get(upload_id)
            if doc is None:
                raise NotFound(f"{where}.upload_id: no upload {quote(upload_id)}; upload the document with "
                               "UploadDocument first")
            upload = self._records.from_document(doc)
            resolved.append(ResolvedDocument(upload_id=upload.id, name=name, component=component,
                                             media_type=upload.media_type, size=upload.size,
                                             sha256=upload.sha256, key=upload.key))
        return resolved

    def _remove_unreferenced(self, key: str) -> None:
        try:
            self._objects.client.remove_object(self._objects.bucket, key)
        except Exception:  # the caller's answer (AlreadyExists) matters more than this garbage
            log.warning("could not remove an unreferenced upload", extra={"key": key}, exc_info=True)

    def _repeat(self, existing: dict, media_type: str, expected: str, chunks: Iterable[bytes],
                digest: str | None = None, size: int | None = None) -> Upload:
        """A request id seen before: the first answer if the content is the same (hashed here, not
        stored again), else AlreadyExists."""
        first = self._records.from_document(existing)
        if digest is None or size is None:
            hashing, size = hashlib.sha256(), 0
            for chunk in chunks:
                size += len(chunk)
                if size > first.size:
                    raise _reused(first.request_id)  # already longer than the first content
                hashing.update(chunk)
            digest = hashing.hexdigest()
        if expected and digest != expected:
            raise _sha256_mismatch(expected, digest)
        if (digest, size, media_type) != (first.sha256, first.size, first.media_type):
            raise _reused(first.request_id)
        return first


def _checked(chunks: Iterable[bytes], content: ContentCheck, expected: str) -> Iterator[bytes]:
    """The chunks as put_stream reads them, refused (by raising) before the upload can complete."""
    hashing = hashlib.sha256() if expected else None
    for chunk in chunks:
        if not content.feed(chunk):
            raise InvalidArgument("chunk", f"is not a {content.media_type} file")
        if hashing is not None:
            hashing.update(chunk)
        yield chunk
    # The end of the caller's stream; put_stream has not seen it yet.
    if content.size == 0:
        raise InvalidArgument("chunk", "no content: the stream ended after the header")
    if not content.matches():
        raise InvalidArgument("chunk", f"is not a {content.media_type} file")
    if hashing is not None and hashing.hexdigest() != expected:
        raise _sha256_mismatch(expected, hashing.hexdigest())


def _sha256_mismatch(expected: str, actual: str) -> InvalidArgument:
    return InvalidArgument("header.sha256", f"the content received has SHA-256 {actual}, not {expected}: "
                                            "it was changed or cut on the way; upload it again")


def _reused(request_id: str) -> AlreadyExists:
    return AlreadyExists(f"request_id {quote(request_id)} was already used to upload a different document; "
                         "use a new request id")
