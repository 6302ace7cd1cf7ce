"""Signing's worker use case: a `signing.sign_document` work message from routing becomes a signed
PDF in object storage, a `document.signed` event and a `routing.signing_completed` reply — once
per signing request, however often the message arrives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from motcua.errors import DomainError, Unavailable
from motcua.events.v1 import events_pb2
from motcua.logs import bind
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import InvalidEnvelope, build_event, build_work, parse_work
from motcua.messaging.outbox import Outbox, add_messages, message_ids
from motcua.protobufs import document_ref, timestamp
from motcua.store.port import DuplicateKey, Store
from signing.adapters.records import SigningRecord
from signing.application.sign_document import SignDocument
from signing.domain import SignedDocument, SignerRef, SignerRole, SigningRequest

log = logging.getLogger(__name__)
SOURCE = "/motcua/signing"


class SigningWork:
    def __init__(self, store: Store, outbox: Outbox, sign_document: SignDocument, official_id: str,
                 seal_id: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._records = store.collection(SigningRecord)
        self._outbox = outbox
        self._sign_document = sign_document
        self._signers = (SignerRef(SignerRole.PERSONAL, official_id), SignerRef(SignerRole.SEAL, seal_id))
        self._clock = clock

    def dispatch(self, delivery: Delivery) -> None:
        try:
            work = parse_work(delivery.body, delivery.headers, delivery.queue)
        except InvalidEnvelope as exc:
            raise PermanentFailure(str(exc)) from exc
        if work.type != "signing.sign_document":
            raise PermanentFailure(f"unknown work type {work.type!r}")
        body = work.body
        with bind(dossier_code=body.get("code"), area=body.get("area")):
            self.sign(body, work.traceparent)

    def sign(self, body: dict[str, Any], traceparent: str) -> None:
        existing = self._records.get(body.get("signing_request_id", ""))
        if existing is not None:
            # Signed before: sign nothing twice, and publish nothing either. What its write left
            # pending is that writer's to publish, or the relay's after a crash.
            return
        try:
            request = SigningRequest(request_id=body["signing_request_id"], dossier_code=body["code"],
                                     area=body["area"], document=dict(body["document"]),
                                     signers=self._signers)
            signed: SignedDocument = self._sign_document(request)
        except Unavailable:
            raise  # object storage out of reach: retried with backoff, like any passing failure
        except (KeyError, DomainError) as exc:  # malformed, not a PDF, unknown signer, already signed
            raise PermanentFailure(f"cannot sign: {exc!r}") from exc
        now = self._clock()
        # where the dossier is (the deprecated ``district`` always held the receiving unit)
        unit = body.get("receiving_unit") or ""
        where = {"receiving_unit": unit, "area": request.area, "district": unit}
        signers = [s.signer_name for s in signed.signatures]
        document = {**signed.document, "name": body["document"].get("name", "ket-qua.pdf")}
        event = build_event(
            name="document.signed", source=SOURCE, subject=request.dossier_code, area=request.area,
            traceparent=traceparent, data=events_pb2.DocumentSigned(
                dossier_id=body["dossier_id"], code=request.dossier_code, **where,
                signing_request_id=request.request_id, signed=document_ref(document), signers=signers,
                signed_at=timestamp(now)))
        reply = build_work(service="routing", area=request.area, type="routing.signing_completed",
                           id=f"signed:{request.request_id}", traceparent=traceparent, body={
                               "signing_request_id": request.request_id, "dossier_id": body["dossier_id"],
                               "code": request.dossier_code, **where,
                               "signed": document, "signers": signers})
        messages = [event, reply]
        record = add_messages({
            "_id": request.request_id, "dossier_id": body["dossier_id"], "code": request.dossier_code,
            "area": request.area, "draft": dict(request.document), "signed": document,
            "signatures": [s.to_dict() for s in signed.signatures], "signed_at": now}, messages)
        try:
            stored = self._records.insert(record)
        except DuplicateKey:
            return  # a concurrent delivery signed it first; its record and messages stand
        log.info("document signed", extra={"signatures": len(signers)})
        self._outbox.flush(self._records, stored, message_ids(messages))
