"""How routing stores workflow instances (mongoengine schema + mapping to the domain)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mongoengine import DateTimeField, DictField, IntField, ListField, StringField

from motcua.messaging.outbox import AggregateSchema
from routing.domain.workflow import Status, Step, Workflow


class WorkflowRecord(AggregateSchema):
    meta = {
        "collection": "workflows",
        "indexes": [{"fields": ["code"], "unique": True}, ("district", "status")],
    }

    code = StringField(required=True)
    district = StringField(required=True)
    procedure_code = StringField(required=True)
    unit_id = StringField(required=True)
    received_at = DateTimeField(required=True)
    documents = ListField(DictField())
    steps = ListField(DictField())
    status = IntField(required=True)
    draft = DictField(null=True)
    result = DictField(null=True)
    signing_request_id = StringField()


def to_document(workflow: Workflow) -> dict[str, Any]:
    return {
        "_id": workflow.dossier_id, "code": workflow.code, "district": workflow.district,
        "procedure_code": workflow.procedure_code, "unit_id": workflow.unit_id,
        "received_at": workflow.received_at, "documents": workflow.documents,
        "steps": [{**asdict(s), "done_at": s.done_at.isoformat() if s.done_at else None}
                  for s in workflow.steps],
        "status": int(workflow.status), "draft": workflow.draft, "result": workflow.result,
        "signing_request_id": workflow.signing_request_id,
    }


def from_document(doc: dict[str, Any]) -> Workflow:
    from datetime import datetime

    steps = [Step(name=s["name"], role=s["role"], state=s["state"], actor=s["actor"],
                  done_at=datetime.fromisoformat(s["done_at"]) if s["done_at"] else None)
             for s in doc["steps"]]
    return Workflow(dossier_id=doc["_id"], code=doc["code"], district=doc["district"],
                    procedure_code=doc["procedure_code"], unit_id=doc["unit_id"],
                    received_at=doc["received_at"], documents=list(doc["documents"]), steps=steps,
                    status=Status(doc["status"]), draft=doc.get("draft"), result=doc.get("result"),
                    signing_request_id=doc.get("signing_request_id") or "", version=doc["version"])
