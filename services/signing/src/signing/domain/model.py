"""The signing domain: what is asked (a :class:`SigningRequest`), what comes back (a
:class:`SignedDocument`) and what a check of a signed PDF answers (:class:`SignatureReport`).

Pure Python: no PDF or crypto library here. The rules:

* a result document carries two signatures, the competent official's personal signature first and
  the organisation seal second; the seal is applied only after the personal signature
  (:func:`check_signing_order`);
* a document is recognised as a PDF by its content, never by its name (:func:`check_pdf_bytes`;
  the PDF adapter then checks that it parses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from motcua.errors import InvalidArgument

from .errors import NotAPdf, SigningOrderViolation

PDF_MEDIA_TYPE = "application/pdf"
PDF_MAGIC = b"%PDF-"
# A PDF ends with "%%EOF" (readers tolerate a little trailing junk after it); a transfer cut short
# loses it. 1024 bytes is the window readers search as well.
EOF_MARKER = b"%%EOF"
EOF_WINDOW = 1024

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# <unit identifier: four dot-separated groups>-YYMMDD-NNNN, e.g. 000.00.06.H56-231027-0361 (DOMAIN.md);
# it becomes part of object keys, so nothing else gets through.
DOSSIER_CODE_RE = re.compile(r"^[0-9A-Z]+(\.[0-9A-Z]+){3}-\d{6}-\d{4}$")
_PDF_VERSION_RE = re.compile(rb"^%PDF-[12]\.\d")
_REF_FIELDS = ("key", "sha256", "size", "media_type")


class SignerRole(StrEnum):
    PERSONAL = "personal"  # chữ ký cá nhân of the competent official
    SEAL = "seal"  # chữ ký số của cơ quan, tổ chức (the organisation seal), applied by the clerk


@dataclass(frozen=True)
class SignerRef:
    """Who signs, and in which capacity. ``signer_id`` names a key the service holds (a PKCS#11
    key label in production, a file pair of the development PKI otherwise)."""

    role: SignerRole
    signer_id: str

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "role", SignerRole(self.role))
        except ValueError:
            roles = ", ".join(r.value for r in SignerRole)
            raise InvalidArgument("signers.role", f"{self.role!r} is not one of {roles}") from None
        _require_text("signers.signer_id", self.signer_id)

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role.value, "signer_id": self.signer_id}


def check_signing_order(signers: Iterable[SignerRef]) -> None:
    """A result document is signed by the official first, then sealed by the organisation."""
    roles = [s.role for s in signers]
    if SignerRole.PERSONAL not in roles:
        raise SigningOrderViolation("the seal is applied only after the official's personal signature")
    if roles != [SignerRole.PERSONAL, SignerRole.SEAL]:
        found = ", ".join(r.value for r in roles) or "none"
        raise SigningOrderViolation(
            f"expected the personal signature then the organisation seal, got: {found}"
        )


def check_document_ref(ref: Any, name: str = "document") -> dict[str, Any]:
    """A reference to a stored object: ``{key, sha256, size, media_type}``; returns a copy."""
    if not isinstance(ref, Mapping):
        raise InvalidArgument(name, "must be an object with key, sha256, size and media_type")
    missing = [f for f in _REF_FIELDS if f not in ref]
    if missing:
        raise InvalidArgument(name, f"missing {', '.join(missing)}")
    _require_text(f"{name}.key", ref["key"])
    if not isinstance(ref["sha256"], str) or not _SHA256_RE.match(ref["sha256"]):
        raise InvalidArgument(f"{name}.sha256", "must be 64 lowercase hexadecimal digits")
    size = ref["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidArgument(f"{name}.size", "must be a positive integer")
    _require_text(f"{name}.media_type", ref["media_type"])
    return {f: ref[f] for f in _REF_FIELDS}


def check_pdf_bytes(data: bytes) -> None:
    """Cheap content check before any parsing: the PDF header and the end-of-file marker."""
    if not data:
        raise NotAPdf("the document is empty")
    if not data.startswith(PDF_MAGIC):
        raise NotAPdf("it does not start with the %PDF- header")
    if not _PDF_VERSION_RE.match(data):
        raise NotAPdf("the %PDF- header names no PDF version")
    if EOF_MARKER not in data[-EOF_WINDOW:]:
        raise NotAPdf("it has no %%EOF marker at its end (truncated?)")


@dataclass(frozen=True)
class SigningRequest:
    """Sign one draft result document of a dossier: official first, then the organisation seal."""

    request_id: str
    dossier_code: str
    area: str  # the area the dossier is worked in (motcua.areas)
    document: dict[str, Any] = field(hash=False)  # the draft: {key, sha256, size, media_type}
    signers: tuple[SignerRef, ...]

    def __post_init__(self) -> None:
        _require_text("request_id", self.request_id)
        _require_text("dossier_code", self.dossier_code)
        if not DOSSIER_CODE_RE.match(self.dossier_code):
            raise InvalidArgument("dossier_code", "must look like 000.00.06.H56-231027-0361")
        _require_text("area", self.area)
        document = check_document_ref(self.document)
        if document["media_type"] != PDF_MEDIA_TYPE:
            raise InvalidArgument("document.media_type", f"must be {PDF_MEDIA_TYPE}")
        object.__setattr__(self, "document", document)
        signers = tuple(self.signers)
        if not all(isinstance(s, SignerRef) for s in signers):
            raise InvalidArgument("signers", "must be SignerRef values")
        check_signing_order(signers)
        object.__setattr__(self, "signers", signers)

    @property
    def official(self) -> SignerRef:
        return self.signers[0]

    @property
    def seal(self) -> SignerRef:
        return self.signers[-1]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SigningRequest:
        """Build a request from a decoded message; a malformed one raises ``InvalidArgument``."""
        if not isinstance(data, Mapping):
            raise InvalidArgument("request", "must be an object")
        signers = data.get("signers")
        if not isinstance(signers, list | tuple):
            raise InvalidArgument("signers", "must be a list of {role, signer_id}")
        refs = []
        for s in signers:
            if not isinstance(s, Mapping):
                raise InvalidArgument("signers", "each signer must be an object {role, signer_id}")
            refs.append(SignerRef(role=s.get("role"), signer_id=s.get("signer_id")))
        return cls(
            request_id=data.get("request_id"),
            dossier_code=data.get("dossier_code"),
            area=data.get("area") or data.get("district"),
            document=data.get("document"),
            signers=tuple(refs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "dossier_code": self.dossier_code,
            "area": self.area,
            "document": dict(self.document),
            "signers": [s.to_dict() for s in self.signers],
        }


# a unit's slug in the catalog (``xa-ha-long``, ``ubnd-bim-son``): it names the ``seal:<unit>`` key
UNIT_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class SealRequest:
    """Seal a form the platform issues (forms 01–06, the stop notice) with the issuing unit's
    organisation signature only: no personal signature before it (the signing-order rule is for
    result documents), no image (DOMAIN.md "Signing": attachments are signed by the organisation
    without an image). ``label`` says what the document is (``Mẫu 01 000.00.06.H56-231027-0361``),
    for the signature's reason."""

    unit: str
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.unit, str) or not UNIT_RE.match(self.unit):
            raise InvalidArgument("unit", "must be a unit's slug from the catalog, e.g. xa-ha-long")
        if not isinstance(self.label, str) or len(self.label) > 200:
            raise InvalidArgument("label", "must be text of at most 200 characters")

    @property
    def signer(self) -> SignerRef:
        return SignerRef(SignerRole.SEAL, self.unit)

    def to_dict(self) -> dict[str, str]:
        return {"unit": self.unit, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SealRequest:
        return cls(unit=data.get("unit"), label=data.get("label") or "")


@dataclass(frozen=True)
class AppliedSignature:
    """One signature as it was put into the PDF."""

    role: SignerRole
    field_name: str
    signer_name: str  # the certificate subject's common name
    signed_at: datetime  # the signing time the signature records (/M of its signature dictionary)
    timestamped_at: datetime | None  # time of its RFC 3161 timestamp token, if one was obtained

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "field_name": self.field_name,
            "signer_name": self.signer_name,
            "signed_at": self.signed_at.isoformat(),
            "timestamped_at": self.timestamped_at.isoformat() if self.timestamped_at else None,
        }


@dataclass(frozen=True)
class SignedPdf:
    """What the signer port returns: the signed bytes and the signatures it applied, in order."""

    data: bytes = field(repr=False)
    signatures: tuple[AppliedSignature, ...]
    level: str = "B-T"  # the PAdES level reached: B-B | B-T | B-LT | B-LTA


@dataclass(frozen=True)
class SignedDocument:
    """The result of a signing request: the stored signed PDF and who signed it when."""

    request_id: str
    dossier_code: str
    area: str
    source: dict[str, Any] = field(hash=False)  # the draft that was signed
    document: dict[str, Any] = field(hash=False)  # the signed PDF as stored
    sha256: str
    size: int
    signatures: tuple[AppliedSignature, ...]
    level: str = "B-T"

    def __post_init__(self) -> None:
        document = check_document_ref(self.document, "signed document")
        if (document["sha256"], document["size"]) != (self.sha256, self.size):
            raise ValueError("the stored reference does not describe the signed bytes")
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "signatures", tuple(self.signatures))

    @property
    def signer_names(self) -> tuple[str, ...]:
        return tuple(s.signer_name for s in self.signatures)

    @property
    def signed_at(self) -> datetime:
        """When the document was finished: the time of its last signature (the seal)."""
        last = self.signatures[-1]
        return last.timestamped_at or last.signed_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "dossier_code": self.dossier_code,
            "area": self.area,
            "source": dict(self.source),
            "document": dict(self.document),
            "sha256": self.sha256,
            "size": self.size,
            "signed_at": self.signed_at.isoformat(),
            "level": self.level,
            "signatures": [s.to_dict() for s in self.signatures],
        }


@dataclass(frozen=True)
class SignatureReport:
    """What a check of one signature of a PDF answers: intact? chain trusted? revoked? signed when?
    by whom? and how much of the file it covers."""

    field_name: str
    signer_name: str  # common name of the signer's certificate
    signer_subject: str  # the whole subject, human readable
    signing_time: datetime | None  # as the signer reports it
    timestamp: datetime | None  # from a valid RFC 3161 timestamp token, if any
    timestamp_trusted: bool
    intact: bool  # the covered bytes hash to the signed digest
    valid: bool  # the cryptographic signature verifies
    trusted: bool  # the certificate chains to one of the trust roots
    revoked: bool  # known revoked (without revocation data this stays False)
    covers_whole_file: bool  # no byte was appended after this signature
    coverage: str  # entire_file | entire_revision | ...
    modifications: str  # what later revisions changed: none | lta_updates | form_filling | ...
    signer_issuer: str = ""
    serial: str = ""  # the certificate's serial number, hex
    revocation: str = "unknown"  # good | revoked | unknown, at the time of the timestamp token
    level: str = "B-B"  # B-B | B-T | B-LT | B-LTA
    verdict: str = "indeterminate"  # valid | indeterminate | invalid
    problems: str = ""  # why the verdict is not valid

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and not self.revoked


def _require_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(name, "is required")
