"""The signing domain and the SignDocument use case, with fakes for its ports (no PDF library)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from motcua import errors
from signing.application.sign_document import SignDocument
from signing.domain import (
    AlreadySigned,
    AppliedSignature,
    NotAPdf,
    SignedDocument,
    SignedPdf,
    SignerRef,
    SignerRole,
    SigningOrderViolation,
    SigningRequest,
    UnknownSigner,
    check_pdf_bytes,
    check_signing_order,
)

PERSONAL = SignerRef(SignerRole.PERSONAL, "official.nguyen-van-an")
SEAL = SignerRef(SignerRole.SEAL, "seal.ubnd-tx-bim-son")
MINIMAL_PDF = (
    b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + zlib.compress(b"\x00" * 64)


def ref_for(data: bytes, key: str = "routing/000.00.06.H56-231027-0361/draft") -> dict:
    return {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "media_type": "application/pdf"}


def request_dict(**changes) -> dict:
    data = {
        "request_id": "req-1",
        "dossier_code": "000.00.06.H56-231027-0361",
        "area": "bim-son",
        "document": ref_for(MINIMAL_PDF),
        "signers": [PERSONAL.to_dict(), SEAL.to_dict()],
    }
    data.update(changes)
    return data


# -- SigningRequest ----------------------------------------------------------------------------


def test_request_from_a_message_keeps_its_fields_and_order():
    request = SigningRequest.from_dict(request_dict())
    assert request.official == PERSONAL
    assert request.seal == SEAL
    assert request.signers == (PERSONAL, SEAL)
    assert request.document == ref_for(MINIMAL_PDF)
    assert SigningRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_request_copies_the_document_reference():
    document = ref_for(MINIMAL_PDF)
    request = SigningRequest.from_dict(request_dict(document=document))
    document["key"] = "changed"
    assert request.document["key"] != "changed"


@pytest.mark.parametrize(
    "signers, message",
    [
        ([SEAL.to_dict()], "only after the official's personal signature"),
        ([SEAL.to_dict(), PERSONAL.to_dict()], "got: seal, personal"),
        ([PERSONAL.to_dict()], "got: personal"),
        ([PERSONAL.to_dict(), PERSONAL.to_dict()], "got: personal, personal"),
        ([PERSONAL.to_dict(), SEAL.to_dict(), SEAL.to_dict()], "got: personal, seal, seal"),
        ([], "only after the official's personal signature"),
    ],
)
def test_the_seal_comes_only_after_the_personal_signature(signers, message):
    with pytest.raises(SigningOrderViolation, match=message) as caught:
        SigningRequest.from_dict(request_dict(signers=signers))
    assert caught.value.field == "signers"
    assert isinstance(caught.value, errors.InvalidArgument)


def test_signing_order_rule_accepts_personal_then_seal():
    check_signing_order([PERSONAL, SEAL])


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": None}, "request_id"),
        ({"dossier_code": "  "}, "dossier_code"),
        ({"dossier_code": "../../etc/passwd"}, "dossier_code"),
        ({"dossier_code": "000.00.06.H56-231027-0361/x"}, "dossier_code"),
        ({"area": ""}, "area"),
        ({"document": "routing/x"}, "document"),
        ({"document": {"key": "k"}}, "document"),
        ({"document": {**ref_for(MINIMAL_PDF), "sha256": "ABC"}}, "document.sha256"),
        ({"document": {**ref_for(MINIMAL_PDF), "sha256": "A" * 64}}, "document.sha256"),
        ({"document": {**ref_for(MINIMAL_PDF), "size": 0}}, "document.size"),
        ({"document": {**ref_for(MINIMAL_PDF), "size": True}}, "document.size"),
        ({"document": {**ref_for(MINIMAL_PDF), "size": "12"}}, "document.size"),
        ({"document": {**ref_for(MINIMAL_PDF), "key": ""}}, "document.key"),
        ({"document": {**ref_for(MINIMAL_PDF), "media_type": "image/png"}}, "document.media_type"),
        ({"signers": "personal,seal"}, "signers"),
        ({"signers": ["personal", "seal"]}, "signers"),
        ({"signers": [{"role": "boss", "signer_id": "x"}, SEAL.to_dict()]}, "signers.role"),
        ({"signers": [{"role": "personal", "signer_id": ""}, SEAL.to_dict()]}, "signers.signer_id"),
    ],
)
def test_malformed_requests_name_the_field(changes, field):
    with pytest.raises(errors.InvalidArgument) as caught:
        SigningRequest.from_dict(request_dict(**changes))
    assert caught.value.field == field


def test_a_request_that_is_not_an_object_is_refused():
    with pytest.raises(errors.InvalidArgument):
        SigningRequest.from_dict(["not", "a", "dict"])


# -- PDF content check -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"hello", "%PDF- header"),
        (PNG, "%PDF- header"),
        (b"%PDF-x\n%%EOF\n", "no PDF version"),
        (b" %PDF-1.7\n%%EOF\n", "%PDF- header"),
        (MINIMAL_PDF[: len(MINIMAL_PDF) // 2], "truncated"),
        (MINIMAL_PDF + b"x" * 2000, "truncated"),  # the end marker is not near the end
    ],
)
def test_non_pdf_content_is_refused(data, reason):
    with pytest.raises(NotAPdf, match=reason) as caught:
        check_pdf_bytes(data)
    assert caught.value.field == "document"
    assert isinstance(caught.value, errors.InvalidArgument)


def test_a_pdf_passes_the_content_check():
    check_pdf_bytes(MINIMAL_PDF)
    check_pdf_bytes(MINIMAL_PDF + b"\r\n")


# -- errors map to the platform's answers -------------------------------------------------------


def test_domain_errors_are_platform_errors():
    assert isinstance(UnknownSigner("x", "seal"), errors.NotFound)
    assert "seal signing key" in str(UnknownSigner("x", "seal"))
    assert isinstance(AlreadySigned(["Sig_Official"]), errors.FailedPrecondition)
    assert isinstance(NotAPdf("it is encrypted"), errors.InvalidArgument)


# -- SignedDocument ----------------------------------------------------------------------------

T0 = datetime(2025, 3, 4, 8, 30, tzinfo=UTC)


def applied(role: SignerRole, name: str, at: datetime, ts: datetime | None = None) -> AppliedSignature:
    field = "Sig_Official" if role is SignerRole.PERSONAL else "Sig_Seal"
    return AppliedSignature(role=role, field_name=field, signer_name=name, signed_at=at, timestamped_at=ts)


SIGNATURES = (
    applied(SignerRole.PERSONAL, "Nguyễn Văn An", T0, T0 + timedelta(seconds=1)),
    applied(SignerRole.SEAL, "UBND thị xã Bỉm Sơn", T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)),
)


def signed_document(data: bytes, **changes) -> SignedDocument:
    values = dict(
        request_id="req-1", dossier_code="000.00.06.H56-231027-0361", area="bim-son",
        source=ref_for(MINIMAL_PDF), document=ref_for(data, "signing/x/y"),
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), signatures=SIGNATURES,
    )
    values.update(changes)
    return SignedDocument(**values)


def test_signed_document_tells_who_signed_and_when():
    doc = signed_document(b"%PDF-1.7 signed")
    assert doc.signer_names == ("Nguyễn Văn An", "UBND thị xã Bỉm Sơn")
    assert doc.signed_at == T0 + timedelta(seconds=3)  # the seal's timestamp
    as_json = json.loads(json.dumps(doc.to_dict()))
    assert as_json["signatures"][0]["role"] == "personal"
    assert as_json["signed_at"] == "2025-03-04T08:30:03+00:00"
    assert as_json["sha256"] == hashlib.sha256(b"%PDF-1.7 signed").hexdigest()


def test_signed_at_falls_back_to_the_signature_time_without_timestamp():
    untimestamped = (SIGNATURES[0], applied(SignerRole.SEAL, "UBND", T0 + timedelta(seconds=9)))
    assert signed_document(b"%PDF-", signatures=untimestamped).signed_at == T0 + timedelta(seconds=9)


def test_signed_document_refuses_a_reference_to_other_bytes():
    with pytest.raises(ValueError, match="does not describe"):
        signed_document(b"%PDF-1.7 signed", size=3)
    with pytest.raises(ValueError, match="does not describe"):
        signed_document(b"%PDF-1.7 signed", sha256="0" * 64)


# -- SignDocument with fake ports ----------------------------------------------------------------


class MemoryObjects:
    """Content-addressed, checksum-verifying fake of the object store."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put(self, prefix: str, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{prefix}/{digest}"
        self.objects[key] = data
        return {"key": key, "sha256": digest, "size": len(data), "media_type": media_type}

    def get(self, ref: dict) -> bytes:
        data = self.objects[ref["key"]]
        assert hashlib.sha256(data).hexdigest() == ref["sha256"] and len(data) == ref["size"]
        return data


class FakeSigner:
    def __init__(self):
        self.calls = []

    def __call__(self, pdf: bytes, request: SigningRequest) -> SignedPdf:
        self.calls.append((pdf, request))
        return SignedPdf(data=pdf + b"% signed\n%%EOF\n", signatures=SIGNATURES)


def store_draft(objects: MemoryObjects, data: bytes) -> SigningRequest:
    ref = objects.put("routing/000.00.06.H56-231027-0361", data, "application/pdf")
    return SigningRequest.from_dict(request_dict(document=ref))


def test_sign_document_reads_signs_writes_and_reports():
    objects, signer = MemoryObjects(), FakeSigner()
    request = store_draft(objects, MINIMAL_PDF)

    result = SignDocument(objects.get, objects.put, signer)(request)

    assert signer.calls == [(MINIMAL_PDF, request)]
    stored = objects.get(result.document)
    assert stored == MINIMAL_PDF + b"% signed\n%%EOF\n"
    assert result.document["key"] == f"signing/000.00.06.H56-231027-0361/{result.sha256}"
    assert result.document["media_type"] == "application/pdf"
    assert (result.sha256, result.size) == (hashlib.sha256(stored).hexdigest(), len(stored))
    assert result.source == request.document
    assert result.signer_names == ("Nguyễn Văn An", "UBND thị xã Bỉm Sơn")
    assert (result.request_id, result.dossier_code, result.area) == (
        "req-1", "000.00.06.H56-231027-0361", "bim-son")


@pytest.mark.parametrize("content", [b"hello", PNG, MINIMAL_PDF[:-12]])
def test_sign_document_refuses_a_draft_that_is_not_a_pdf_and_stores_nothing(content):
    objects, signer = MemoryObjects(), FakeSigner()
    request = store_draft(objects, content)
    before = dict(objects.objects)

    with pytest.raises(NotAPdf):
        SignDocument(objects.get, objects.put, signer)(request)

    assert signer.calls == []
    assert objects.objects == before


def test_sign_document_passes_signer_errors_through_and_stores_nothing():
    objects = MemoryObjects()
    request = store_draft(objects, MINIMAL_PDF)
    before = dict(objects.objects)

    def unknown(pdf, req):
        raise UnknownSigner(req.official.signer_id, "personal")

    with pytest.raises(UnknownSigner):
        SignDocument(objects.get, objects.put, unknown)(request)
    assert objects.objects == before


# -- layering ----------------------------------------------------------------------------------


def test_domain_and_application_import_no_pdf_crypto_or_framework_library():
    forbidden = ["pyhanko", "pyhanko_certvalidator", "cryptography", "asn1crypto", "fontTools", "nameko",
                 "eventlet", "kombu", "minio", "grpc", "mongoengine"]
    code = (
        "import sys, json; import signing.domain, signing.application.sign_document; "
        f"print(json.dumps(sorted(m for m in {forbidden!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
