"""Signing's worker use case: routing's request to sign a draft becomes a signed PDF in object
storage, a ``document.signed`` event and a ``routing.signing_completed`` reply — once per signing
request, however often the request arrives (one record per request, written in a unit of work)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from motcua.errors import DomainError, InvalidArgument, Unavailable
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event, build_work
from motcua.protobufs import document_ref, timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork
from motcua.work.v1 import work_pb2
from signing.adapters.records import SigningRecord
from signing.application.sign_document import SignDocument
from signing.domain import SignedDocument, SignerRef, SignerRole, SigningRequest

log = logging.getLogger(__name__)
SOURCE = "/motcua/signing"


@dataclass(frozen=True)
class SignDraft:
    """Sign the draft result ``document`` of a dossier (routing's ``signing.sign_document``)."""

    signing_request_id: str
    dossier_id: str
    code: str
    area: str
    receiving_unit: str
    document: dict[str, Any]  # the draft's reference: key, sha256, size, media_type, name
    traceparent: str | None = None


class SigningWork:
    """Handles :class:`SignDraft`."""

    def __init__(self, uows: UnitsOfWork, sign_document: SignDocument, official_id: str, seal_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._uows = uows
        self._sign_document = sign_document
        self._signers = (SignerRef(SignerRole.PERSONAL, official_id), SignerRef(SignerRole.SEAL, seal_id))
        self._clock = clock

    def __call__(self, command: SignDraft) -> None:
        self._uows.run(lambda uow: self._sign(uow, command), what=f"signing {command.signing_request_id}")

    def _sign(self, uow: UnitOfWork, c: SignDraft) -> None:
        if uow.get(SigningRecord, c.signing_request_id) is not None:
            return  # signed before: sign nothing twice; its write (or the relay) publishes its messages
        request = SigningRequest(request_id=c.signing_request_id, dossier_code=c.code, area=c.area,
                                 document=dict(c.document), signers=self._signers)
        try:
            signed: SignedDocument = self._sign_document(request)
        except (InvalidArgument, Unavailable):
            raise  # refused as sent (parked), or object storage out of reach (retried with backoff)
        except DomainError as exc:  # not a PDF, unknown signer, already signed: never signable as sent
            raise InvalidArgument("document", f"cannot be signed: {exc}") from exc
        now = self._clock()
        # where the dossier is (the deprecated ``district`` always held the receiving unit)
        where = {"receiving_unit": c.receiving_unit, "area": c.area, "district": c.receiving_unit}
        signers = [s.signer_name for s in signed.signatures]
        document = {**signed.document, "name": c.document.get("name", "ket-qua.pdf")}
        event = build_event(
            name="document.signed", source=SOURCE, subject=c.code, area=c.area, traceparent=c.traceparent,
            data=events_pb2.DocumentSigned(
                dossier_id=c.dossier_id, code=c.code, **where, signing_request_id=c.signing_request_id,
                signed=document_ref(document), signers=signers, signed_at=timestamp(now)))
        reply = build_work(service="routing", area=c.area, type="routing.signing_completed",
                           id=f"signed:{c.signing_request_id}", traceparent=c.traceparent,
                           data=work_pb2.SigningCompleted(
                               signing_request_id=c.signing_request_id, dossier_id=c.dossier_id, code=c.code,
                               area=c.area, receiving_unit=c.receiving_unit, signed=document_ref(document),
                               signers=signers))
        uow.add(SigningRecord, {
            "_id": c.signing_request_id, "dossier_id": c.dossier_id, "code": c.code, "area": c.area,
            "draft": dict(request.document), "signed": document,
            "signatures": [s.to_dict() for s in signed.signatures], "signed_at": now}, [event, reply])
        uow.commit()
        log.info("document signed", extra={"signatures": len(signers)})
