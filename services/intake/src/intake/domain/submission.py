"""What a submission must satisfy before anything is stored: the applicant, the documents (checked
by content, not by the name or the claimed type), the procedure's components they are, and their
sizes."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from intake.domain.catalog import Component, Procedure
from motcua.errors import InvalidArgument

IDENTITY_RE = re.compile(r"^[0-9]{12}\Z")  # CCCD: 12 ASCII digits (\d would take any script's digits)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")  # \Z: "$" would accept a trailing newline
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}\Z")
MAX_NAME_LENGTH = 255

# Leading bytes ("magic numbers") of the media types the platform accepts.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
# What a catalog component may accept: the types whose content the platform can check.
ACCEPTED_MEDIA_TYPES = frozenset(SIGNATURES)
# A PDF ends with %%EOF (maybe followed by whitespace) within its last kilobyte.
PDF_TRAILER = b"%%EOF"
PDF_TRAILER_WINDOW = 1024
_HEAD_BYTES = max(len(s) for signatures in SIGNATURES.values() for s in signatures)
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
UPLOAD_NAMESPACE = uuid.UUID("0b6f3c1e-93a4-4d53-8a3e-5f2f7b9d4e21")


@dataclass(frozen=True)
class Applicant:
    full_name: str
    identity_number: str
    phone: str = ""
    email: str = ""
    address: str = ""
    # email | sms (empty: every channel with an address); a list, as the stores give it back
    notify_channels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IncomingDocument:
    name: str
    media_type: str
    content: bytes
    component: str = ""  # code of the procedure component (thành phần hồ sơ) this document is


@dataclass(frozen=True)
class Upload:
    """A document received with UploadDocument, before (or without) a submission naming it."""

    id: str
    request_id: str
    sha256: str
    size: int
    media_type: str
    key: str  # in object storage
    created_at: datetime


@dataclass(frozen=True)
class ResolvedDocument:
    """An uploaded document as a submission names it (UploadedDocument): what the upload stored plus
    the name and component the submission gives it. Its content was checked when it was uploaded;
    :func:`check_documents` checks the rest against the procedure, as for an inline document."""

    upload_id: str
    name: str
    component: str
    media_type: str
    size: int
    sha256: str
    key: str


@dataclass(frozen=True)
class Limits:
    max_document_bytes: int  # per document (a component may set a lower limit of its own)
    max_documents: int
    max_dossier_bytes: int | None = None  # all documents of one dossier together; None: no such limit


def check_request_id(request_id: str, field: str = "request_id") -> None:
    if not request_id:
        raise InvalidArgument(field, "is required")
    if not REQUEST_ID_RE.match(request_id):
        raise InvalidArgument(field, "must be 8-128 characters of letters, digits, . _ : -")


def upload_id_for(request_id: str) -> str:
    """The same request id always names the same upload, so a retried upload finds the first."""
    return str(uuid.uuid5(UPLOAD_NAMESPACE, request_id))


def check_upload_header(request_id: str, media_type: str, sha256: str) -> str:
    """The header of a streamed upload, checked before any byte is read; returns the expected
    SHA-256 in lower case ("" when none was given)."""
    check_request_id(request_id, "header.request_id")
    if media_type not in ACCEPTED_MEDIA_TYPES:
        allowed = ", ".join(sorted(ACCEPTED_MEDIA_TYPES))
        raise InvalidArgument("header.media_type", f"{media_type or 'empty'} is not accepted ({allowed})")
    expected = sha256.lower()
    if expected and not SHA256_RE.match(expected):
        raise InvalidArgument("header.sha256", "must be 64 hexadecimal digits (or empty)")
    return expected


def check_applicant(applicant: Applicant | None) -> None:
    if applicant is None:
        raise InvalidArgument("applicant", "is required")
    if not applicant.full_name.strip():
        raise InvalidArgument("applicant.full_name", "is required")
    if not IDENTITY_RE.match(applicant.identity_number):
        raise InvalidArgument("applicant.identity_number", "must be a 12-digit citizen identity number")
    if applicant.email and not EMAIL_RE.match(applicant.email):
        raise InvalidArgument("applicant.email", "is not an e-mail address")
    given = {"email": applicant.email, "sms": applicant.phone}
    for channel in applicant.notify_channels:
        if channel not in given:
            raise InvalidArgument("applicant.notify_channels", f"unknown channel {channel[:20]!r} (email, sms)")
        if not given[channel].strip():
            raise InvalidArgument("applicant.notify_channels",
                                  f"{channel} needs the applicant's {'email' if channel == 'email' else 'phone'}")


def check_documents(documents: Sequence[IncomingDocument], procedure: Procedure, limits: Limits,
                    uploaded: Sequence[ResolvedDocument] = (), complete: bool = True,
                    stored_bytes: int = 0) -> None:
    """Every document is a component of the procedure, of a media type that component accepts, within
    the size limits and really of its claimed type; every required component is there; the dossier
    as a whole is within its size limit. The first problem found is raised, naming the field.

    ``uploaded`` are documents the submission names by upload id (``uploaded[i]``, resolved by
    ``Uploads.resolve``): they go through the same checks, except the content's, which was checked
    as it was uploaded; they count towards the number of documents, the required components and the
    dossier's size like inline ones.

    ``complete=False`` checks a supplement: the documents the applicant adds, which need not
    include every required component again; ``stored_bytes`` are the dossier's documents already
    stored, which count towards its size limit."""
    count = len(documents) + len(uploaded)
    if not count:
        raise InvalidArgument("documents", "at least one document is required")
    if count > limits.max_documents:
        raise InvalidArgument("documents", f"at most {limits.max_documents} documents per dossier")
    total = stored_bytes
    for index, document in enumerate(documents):
        where = f"documents[{index}]"
        size = len(document.content)
        _check_document(document, size, procedure, limits, where, f"{where}.media_type", f"{where}.content")
        if not content_matches(document.media_type, document.content):
            raise InvalidArgument(f"{where}.content", f"is not a {document.media_type} file")
        total += size
    for index, resolved in enumerate(uploaded):
        where = f"uploaded[{index}]"
        # The media type and the size are the upload's: the field to change is the upload id.
        _check_document(resolved, resolved.size, procedure, limits, where, f"{where}.upload_id",
                        f"{where}.upload_id")
        total += resolved.size
    given = {d.component for d in documents} | {d.component for d in uploaded}
    missing = [c for c in procedure.required_components if c.code not in given] if complete else []
    if missing:
        names = ", ".join(f"{c.code!r} ({c.name})" for c in missing)
        plural = "s" if len(missing) > 1 else ""
        raise InvalidArgument("documents", f"missing required component{plural} {names}")
    if limits.max_dossier_bytes is not None and total > limits.max_dossier_bytes:
        raise InvalidArgument("documents", f"{total} bytes in all exceeds the limit of {limits.max_dossier_bytes} "
                                           "per dossier")


def _check_document(document: IncomingDocument | ResolvedDocument, size: int, procedure: Procedure,
                    limits: Limits, where: str, media_type_field: str, size_field: str) -> Component:
    """What is checked of one document whether its bytes came inline or were uploaded: its name, its
    component, a media type that component accepts, and a size within the limits."""
    check_file_name(document.name, f"{where}.name")
    component = component_of(document, procedure, f"{where}.component")
    if document.media_type not in component.media_types:
        allowed = ", ".join(sorted(component.media_types))
        raise InvalidArgument(media_type_field,
                              f"{document.media_type or 'empty'} is not accepted for component "
                              f"{component.code!r} ({allowed})")
    if not size:
        raise InvalidArgument(size_field, "is empty")
    limit, whose = limits.max_document_bytes, ""
    if component.max_bytes is not None and component.max_bytes < limit:
        limit, whose = component.max_bytes, f" for component {component.code!r}"
    if size > limit:
        raise InvalidArgument(size_field, f"{size} bytes exceeds the limit of {limit}{whose}")
    return component


def component_of(document: IncomingDocument | ResolvedDocument, procedure: Procedure, field: str) -> Component:
    """The procedure component a document names."""
    codes = ", ".join(c.code for c in procedure.components)
    if not document.component:
        raise InvalidArgument(field, f"is required: the code of a component of procedure {procedure.code} "
                                     f"({codes})")
    component = procedure.component(document.component)
    if component is None:
        raise InvalidArgument(field, f"{document.component!r} is not a component of procedure {procedure.code} "
                                     f"({codes})")
    return component


def check_file_name(name: str, field: str) -> None:
    """Names are shown to people, never used as paths: refuse separators and control characters."""
    if not name or not name.strip():
        raise InvalidArgument(field, "is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(field, f"is longer than {MAX_NAME_LENGTH} characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidArgument(field, "must not contain path separators")
    # Cc/Cf: control and format characters (NUL, newline, RTL override); Zl/Zp: U+2028/U+2029,
    # line breaks too.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidArgument(field, "must not contain control characters")


def content_matches(media_type: str, content: bytes) -> bool:
    check = ContentCheck(media_type)
    check.feed(content)
    return check.matches()


class ContentCheck:
    """Whether a document's bytes are of their claimed media type, fed in chunks as they stream by:
    the leading bytes against the type's signature and, for a PDF, %%EOF within the last kilobyte.
    It keeps a few leading bytes and a 1 KiB tail, never the content, so a stream of any size is
    checked on the way (and :func:`content_matches` is the same check on bytes in hand)."""

    def __init__(self, media_type: str):
        self.media_type = media_type
        self.size = 0
        self._signatures = SIGNATURES.get(media_type, ())
        self._keep_tail = media_type == "application/pdf"
        self._head = b""
        self._tail = b""

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; False as soon as the leading bytes rule the claimed type out."""
        self.size += len(chunk)
        if len(self._head) < _HEAD_BYTES:
            self._head += chunk[:_HEAD_BYTES - len(self._head)]
        if self._keep_tail and chunk:
            self._tail = (self._tail + chunk[-PDF_TRAILER_WINDOW:])[-PDF_TRAILER_WINDOW:]
        return self.possible()

    def possible(self) -> bool:
        """Whether the bytes so far can still be the beginning of a file of the claimed type."""
        head = self._head
        return any(head[:len(s)] == s[:len(head)] for s in self._signatures)

    def matches(self) -> bool:
        """At the end of the content: whether all of it is of the claimed type."""
        if not self._head.startswith(self._signatures):  # () for an unknown type: never
            return False
        if self._keep_tail:
            return PDF_TRAILER in self._tail
        return True
