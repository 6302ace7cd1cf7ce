"""Signing's worker use case: routing's request to sign a draft becomes a signed PDF in object
storage, a ``document.signed`` event and a ``routing.signing_completed`` reply — or, when the
official or the unit has no enrolled, valid certificate, a ``routing.signing_failed`` reply with
the reason and nothing stored. Once per signing request, however often the request arrives (one
record per request, written in a unit of work).

The record schema is the adapters' (an opaque type here, given by the entrypoint).
"""

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
from signing.application.sign_document import SignDocument
from signing.domain import SignedDocument, SignerRef, SignerRole, SigningRefused, SigningRequest

log = logging.getLogger(__name__)
SOURCE = "/motcua/signing"


@dataclass(frozen=True)
class SignDraft:
    """Sign the draft result ``document`` of a dossier (routing's ``signing.sign_document``) with
    the key of ``official_id`` and the seal of ``seal_unit``."""

    signing_request_id: str
    dossier_id: str
    code: str
    area: str
    receiving_unit: str
    document: dict[str, Any]  # the draft's reference: key, sha256, size, media_type, name
    official_id: str = ""
    seal_unit: str = ""
    seal_unit_id: str = ""
    traceparent: str | None = None


class SigningWork:
    """Handles :class:`SignDraft`."""

    def __init__(self, uows: UnitsOfWork, sign_document: SignDocument, record_schema: type,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._uows = uows
        self._sign_document = sign_document
        self._schema = record_schema
        self._clock = clock

    def __call__(self, command: SignDraft) -> None:
        self._uows.run(lambda uow: self._sign(uow, command), what=f"signing {command.signing_request_id}")

    def _sign(self, uow: UnitOfWork, c: SignDraft) -> None:
        if uow.get(self._schema, c.signing_request_id) is not None:
            return  # answered before: sign nothing twice; its write (or the relay) publishes its messages
        try:
            if not c.official_id.strip() or not c.seal_unit.strip():
                raise SigningRefused("the request names no official or no sealing unit (routing's sign step "
                                     "records both)")
            request = SigningRequest(
                request_id=c.signing_request_id, dossier_code=c.code, area=c.area, document=dict(c.document),
                signers=(SignerRef(SignerRole.PERSONAL, c.official_id), SignerRef(SignerRole.SEAL, c.seal_unit)))
            signed: SignedDocument = self._sign_document(request)
        except SigningRefused as refused:
            self._refused(uow, c, refused.reason)
            return
        except (InvalidArgument, Unavailable):
            raise  # refused as sent (parked), or storage/TSA/CA out of reach (retried with backoff)
        except DomainError as exc:  # not a PDF, already signed: never signable as sent
            raise InvalidArgument("document", f"cannot be signed: {exc}") from exc
        self._signed(uow, c, signed)

    def _where(self, c: SignDraft) -> dict[str, str]:
        # where the dossier is (the deprecated ``district`` always held the receiving unit)
        return {"receiving_unit": c.receiving_unit, "area": c.area, "district": c.receiving_unit}

    def _signed(self, uow: UnitOfWork, c: SignDraft, signed: SignedDocument) -> None:
        signers = [s.signer_name for s in signed.signatures]
        document = {**signed.document, "name": c.document.get("name", "ket-qua.pdf")}
        signed_at = signed.signed_at  # the seal's timestamp token (its /M time without one)
        event = build_event(
            name="document.signed", source=SOURCE, subject=c.code, area=c.area, traceparent=c.traceparent,
            data=events_pb2.DocumentSigned(
                dossier_id=c.dossier_id, code=c.code, **self._where(c), signing_request_id=c.signing_request_id,
                signed=document_ref(document), signers=signers, signed_at=timestamp(signed_at), level=signed.level,
                official_id=c.official_id, seal_unit=c.seal_unit))
        reply = build_work(service="routing", area=c.area, type="routing.signing_completed",
                           id=f"signed:{c.signing_request_id}", traceparent=c.traceparent,
                           data=work_pb2.SigningCompleted(
                               signing_request_id=c.signing_request_id, dossier_id=c.dossier_id, code=c.code,
                               area=c.area, receiving_unit=c.receiving_unit, signed=document_ref(document),
                               signers=signers, level=signed.level, signed_at=timestamp(signed_at)))
        uow.add(self._schema, {
            "_id": c.signing_request_id, "dossier_id": c.dossier_id, "code": c.code, "area": c.area,
            "outcome": "signed", "official_id": c.official_id, "seal_unit": c.seal_unit,
            "draft": dict(c.document), "signed": document, "level": signed.level,
            "signatures": [s.to_dict() for s in signed.signatures], "signed_at": signed_at}, [event, reply])
        # The signed PDF is stored already and the event and the reply leave through the outbox:
        # nothing after this write needs the request again, so its processed record rides with it.
        uow.commit(completes_message=True)
        log.info("document signed", extra={"signatures": len(signers), "level": signed.level})

    def _refused(self, uow: UnitOfWork, c: SignDraft, reason: str) -> None:
        reply = build_work(service="routing", area=c.area, type="routing.signing_failed",
                           id=f"failed:{c.signing_request_id}", traceparent=c.traceparent,
                           data=work_pb2.SigningFailed(
                               signing_request_id=c.signing_request_id, dossier_id=c.dossier_id, code=c.code,
                               area=c.area, receiving_unit=c.receiving_unit, reason=reason))
        uow.add(self._schema, {
            "_id": c.signing_request_id, "dossier_id": c.dossier_id, "code": c.code, "area": c.area,
            "outcome": "refused", "reason": reason, "official_id": c.official_id, "seal_unit": c.seal_unit,
            "draft": dict(c.document), "signed_at": self._clock()}, [reply])
        uow.commit(completes_message=True)  # the refusal is the request's last write (its reply: the outbox's)
        log.warning("signing refused", extra={"reason": reason})
