"""How intake's aggregates are stored: mongoengine schemas (fields, validation, indexes) and the
mapping between domain objects and the documents that cross the persistence port."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField

from intake.application.ports import Records
from intake.domain.dossier import DocumentRef, Dossier, Status
from intake.domain.submission import Upload
from motcua.messaging.outbox import AggregateSchema
from motcua.store.port import Mapper


class DossierRecord(AggregateSchema):
    meta = {
        "collection": "dossiers",
        "indexes": [
            {"fields": ["request_id"], "unique": True},
            {"fields": ["code"], "unique": True},
            ("area", "status", "received_at"),
        ],
    }

    request_id = StringField(required=True)
    fingerprint = StringField(required=True)
    code = StringField(required=True)
    procedure_code = StringField(required=True)
    procedure_version = IntField(min_value=1)
    receiving_unit = StringField(required=True)
    area = StringField(required=True)
    unit_id = StringField(required=True)
    applicant = DictField(required=True)
    documents = ListField(DictField())
    received_at = DateTimeField(null=True)  # when the desk accepted it; None while in status 1
    submitted_at = DateTimeField(required=True)
    channel = StringField(required=True, choices=("desk", "online", "post"))
    due_at = DateTimeField(null=True)
    previous_due_at = ListField(DateTimeField())
    receipt = DictField(null=True)
    refusal_reasons = ListField(StringField())
    withdrawal_reason = StringField()
    supplement = DictField(null=True)
    status = IntField(required=True, min_value=1, max_value=10)
    history = ListField(DictField())


def to_document(dossier: Dossier) -> dict[str, Any]:
    return {
        "_id": dossier.id, "request_id": dossier.request_id, "fingerprint": dossier.fingerprint,
        "code": dossier.code, "procedure_code": dossier.procedure_code,
        "procedure_version": dossier.procedure_version, "receiving_unit": dossier.receiving_unit,
        "area": dossier.area,
        "unit_id": dossier.unit_id, "applicant": dict(dossier.applicant),
        "documents": [asdict(d) for d in dossier.documents], "received_at": dossier.received_at,
        "submitted_at": dossier.submitted_at or dossier.received_at, "channel": dossier.channel,
        "due_at": dossier.due_at, "previous_due_at": list(dossier.previous_due_at),
        "receipt": dossier.receipt, "refusal_reasons": list(dossier.refusal_reasons),
        "withdrawal_reason": dossier.withdrawal_reason, "supplement": dossier.supplement,
        "status": int(dossier.status), "history": list(dossier.history),
    }


def from_document(doc: dict[str, Any]) -> Dossier:
    return Dossier(
        id=doc["_id"], request_id=doc["request_id"], fingerprint=doc["fingerprint"], code=doc["code"],
        procedure_code=doc["procedure_code"], receiving_unit=doc["receiving_unit"], area=doc["area"],
        unit_id=doc["unit_id"],
        applicant=dict(doc["applicant"]), documents=[DocumentRef(**d) for d in doc["documents"]],
        received_at=doc["received_at"], status=Status(doc["status"]), version=doc["version"],
        history=list(doc.get("history") or []), procedure_version=doc.get("procedure_version"),
        channel=doc.get("channel", "desk"), submitted_at=doc.get("submitted_at"), due_at=doc.get("due_at"),
        previous_due_at=list(doc.get("previous_due_at") or []), receipt=doc.get("receipt"),
        refusal_reasons=list(doc.get("refusal_reasons") or []),
        withdrawal_reason=doc.get("withdrawal_reason") or "", supplement=doc.get("supplement"),
    )


class UploadRecord(Document):
    """A document received with UploadDocument (``_id`` = the upload id, derived from the request id:
    a retried upload finds the first). Not an aggregate: it changes no state others hear about, so
    it has no outbox. ``created_at`` is indexed for a sweep of uploads no submission named."""

    meta = {"collection": "uploads", "indexes": ["created_at"]}

    id = StringField(primary_key=True)
    version = IntField(min_value=1)
    request_id = StringField(required=True)
    sha256 = StringField(required=True, regex=r"^[0-9a-f]{64}$")
    size = IntField(required=True, min_value=1)
    media_type = StringField(required=True)
    key = StringField(required=True)
    created_at = DateTimeField(required=True)


def upload_to_document(upload: Upload) -> dict[str, Any]:
    return {"_id": upload.id, "request_id": upload.request_id, "sha256": upload.sha256, "size": upload.size,
            "media_type": upload.media_type, "key": upload.key, "created_at": upload.created_at}


def upload_from_document(doc: dict[str, Any]) -> Upload:
    return Upload(id=doc["_id"], request_id=doc["request_id"], sha256=doc["sha256"], size=doc["size"],
                  media_type=doc["media_type"], key=doc["key"], created_at=doc["created_at"])


# What the entrypoints hand intake's use cases.
RECORDS = Records(dossiers=Mapper(DossierRecord, to_document, from_document),
                  uploads=Mapper(UploadRecord, upload_to_document, upload_from_document))
