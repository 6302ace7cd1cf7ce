"""Signing's gRPC api process (grpcio): the SigningService trust API — ValidateDocument (a PDF
streamed in, or a dossier's signed result) and ListSignatures — and SealDocument, the platform's
own services' forms sealed by their issuing unit (a pool of sealing processes over the token).
Health, reflection, mutual TLS and the access list as the other apis (motcua.grpcsupport); every
bad input is INVALID_ARGUMENT."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import grpc

from motcua import logs, metrics
from motcua.errors import InvalidArgument
from motcua.grpcsupport import Api, serve
from motcua.objects import ObjectRef
from motcua.protobufs import timestamp
from motcua.runtime import Infrastructure
from motcua.signing.v1 import signing_pb2, signing_pb2_grpc
from signing.adapters.pdf import validate_pdf
from signing.adapters.records import SigningRecord
from signing.adapters.signer_pool import InProcessSigner, SignerPool, engine_config
from signing.application.seal_form import SealForm
from signing.application.validation import SigningQueries, Validation
from signing.config import SigningSettings
from signing.domain import SignatureReport

log = logging.getLogger(__name__)
SERVICE_NAME = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].full_name
VERDICTS = {"valid": signing_pb2.VERDICT_VALID, "indeterminate": signing_pb2.VERDICT_INDETERMINATE,
            "invalid": signing_pb2.VERDICT_INVALID}


class SigningServicer(signing_pb2_grpc.SigningServiceServicer):
    def __init__(self, queries: SigningQueries, seal_form: SealForm | None = None):
        self._queries = queries
        self._seal_form = seal_form or SealForm(None, queries.max_bytes, "no sealing configured")

    def SealDocument(self, request: signing_pb2.SealDocumentRequest, context: grpc.ServicerContext):
        sealed = self._seal_form(request.pdf, request.unit, request.label)
        return signing_pb2.SealDocumentResponse(pdf=sealed.data, sha256=sealed.sha256, level=sealed.level,
                                                signer=sealed.signer, signed_at=_ts(sealed.signed_at))

    def ValidateDocument(self, request_iterator, context: grpc.ServicerContext):
        chunks: list[bytes] = []
        size = 0
        stored = None
        for number, request in enumerate(request_iterator, start=1):
            which = request.WhichOneof("what")
            if which == "stored":
                if number != 1 or chunks:
                    raise InvalidArgument("stored", "names a stored document only in the first message, alone")
                stored = request.stored
            elif which == "chunk":
                if stored is not None:
                    raise InvalidArgument("chunk", "a stored document was named: send no chunks")
                size += len(request.chunk)
                if size > self._queries.max_bytes:
                    raise InvalidArgument("chunk", f"the document is larger than {self._queries.max_bytes} bytes")
                chunks.append(request.chunk)
            else:
                raise InvalidArgument("what", "each message carries a chunk or a stored document")
        if stored is not None:
            return report_message(self._queries.validate_stored(stored.code, stored.sha256))
        return report_message(self._queries.validate_bytes(b"".join(chunks)))

    def ValidatePdf(self, request: signing_pb2.ValidatePdfRequest, context: grpc.ServicerContext):
        if len(request.pdf) > self._queries.max_bytes:
            raise InvalidArgument("pdf", f"the document is larger than {self._queries.max_bytes} bytes")
        return report_message(self._queries.validate_bytes(request.pdf), signing_pb2.ValidatePdfResponse)

    def ListSignatures(self, request: signing_pb2.ListSignaturesRequest, context: grpc.ServicerContext):
        records = self._queries.signed_results(request.code)
        return signing_pb2.ListSignaturesResponse(code=request.code, results=[result_message(r) for r in records])


def _ts(value: Any):
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # the stores keep UTC
    return timestamp(value) if isinstance(value, datetime) else None


def signature_message(r: SignatureReport) -> signing_pb2.SignatureReport:
    return signing_pb2.SignatureReport(
        field_name=r.field_name, signer=r.signer_name, subject=r.signer_subject, issuer=r.signer_issuer,
        serial=r.serial, timestamp=_ts(r.timestamp), claimed_time=_ts(r.signing_time), level=r.level,
        intact=bool(r.intact and r.valid), trusted=bool(r.trusted), revocation=r.revocation,
        modifications=r.modifications, coverage=r.coverage, verdict=VERDICTS[r.verdict], problems=r.problems)


def report_message(v: Validation, response: type = signing_pb2.ValidateDocumentResponse) -> Any:
    """A validation as ``response`` (ValidateDocumentResponse, or ValidatePdfResponse: the same fields)."""
    return response(verdict=VERDICTS[v.verdict], sha256=v.sha256, size=v.size,
                    signatures=[signature_message(s) for s in v.signatures])


def result_message(r: dict[str, Any]) -> signing_pb2.SignedResult:
    signed = r["signed"]
    return signing_pb2.SignedResult(
        signing_request_id=r["_id"], sha256=signed.get("sha256", ""), size=int(signed.get("size", 0)),
        level=r.get("level") or "", signed_at=_ts(r.get("signed_at")),
        signers=[s.get("signer_name", "") for s in r.get("signatures") or []],
        official_id=r.get("official_id") or "", seal_unit=r.get("seal_unit") or "")


def build_queries(settings: SigningSettings, infra: Infrastructure) -> SigningQueries:
    roots = [settings.trust_roots.read_bytes()] if settings.trust_roots and settings.trust_roots.exists() else []
    if not roots:
        log.warning("no trusted roots: every chain is untrusted", extra={"trust_roots": str(settings.trust_roots)})
    records = infra.store.collection(SigningRecord)
    def validate(data: bytes) -> list:
        reports = validate_pdf(data, roots)
        metrics.document_validated()
        return reports

    return SigningQueries(validate=validate,
                          find=lambda filter: records.find(dict(filter)),
                          read=lambda ref: infra.objects.get(ObjectRef.from_dict(ref)),
                          max_bytes=int(settings.signing_max_document_mb * 1024 * 1024))


def build_sealing(settings: SigningSettings) -> tuple[SealForm, Any]:
    """SealDocument's use case over a pool of ``signing_api_processes`` sealing processes (0: in
    this process, one seal at a time), and the pool to close. Without MOTCUA_TSA_URL and
    MOTCUA_TRUST_ROOTS the api still validates, and SealDocument answers FAILED_PRECONDITION
    saying why (never an unsealed success)."""
    max_bytes = int(settings.signing_max_document_mb * 1024 * 1024)
    if not settings.tsa_url or settings.trust_roots is None:
        why = "MOTCUA_TSA_URL and MOTCUA_TRUST_ROOTS are not set (`make run` sets both)"
        log.warning("sealing is off", extra={"reason": why})
        return SealForm(None, max_bytes, why), None
    config = engine_config(settings)
    if settings.signing_api_processes > 0:
        pool = SignerPool(config, settings.signing_api_processes)
        return SealForm(pool.seal, max_bytes), pool
    signer, lock = InProcessSigner(config), threading.Lock()

    def seal(pdf, request):
        with lock:  # one token session in this process: one seal at a time
            return signer.seal(pdf, request)

    return SealForm(seal, max_bytes), signer


def build_api(settings: SigningSettings) -> Api:
    """What one server process of the api serves, on infrastructure (and a sealing pool) of its own."""
    infra = Infrastructure.connect(settings)
    seal_form, sealer = build_sealing(settings)
    servicer = SigningServicer(build_queries(settings, infra), seal_form)

    def stop() -> None:
        if sealer is not None:
            sealer.close()
        infra.close()

    return Api(lambda s: signing_pb2_grpc.add_SigningServiceServicer_to_server(servicer, s), on_stop=stop)


def main() -> int:
    settings = SigningSettings.load()
    logs.configure("signing-api", settings.log_level)
    return serve("signing api", settings, [SERVICE_NAME], build_api)

if __name__ == "__main__":
    sys.exit(main())
