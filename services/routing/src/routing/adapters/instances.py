"""How routing stores workflow instances: one document per dossier, the whole instance as JSON
(``instance``) beside the fields queries need, copied from it on every write and indexed.

The port answers only index-bound queries (a filter must narrow on ``_id`` or the first field of a
declared index), so each question officials and sweeps ask has its index:

* the tasks of a unit, by step deadline: ``(current_unit, step_deadline)`` (and with the role);
* the tasks an official claimed, by step deadline: ``(claimed_by, step_deadline)``;
* what a sweep must look at: ``next_check_at``;
* a dossier by its code: ``code`` (unique); statistics: ``(district, status, due_at)``,
  ``(procedure_code, district)``.

``current_*`` and ``claimed_by`` describe the active step and are None once the dossier is closed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mongoengine import DateTimeField, DictField, IntField, StringField

from motcua.messaging.outbox import AggregateSchema
from motcua.worktime import Calendar
from routing.domain.instance import WorkflowInstance
from routing.domain.sla import DEFAULT_SOON_HOURS, next_check_at


class InstanceRecord(AggregateSchema):
    meta = {
        "collection": "workflow_instances",
        "indexes": [
            {"fields": ["code"], "unique": True},
            ("current_unit", "step_deadline"),
            ("current_unit", "current_role", "step_deadline"),
            ("claimed_by", "step_deadline"),
            "next_check_at",
            ("district", "status", "due_at"),
            ("procedure_code", "district"),
        ],
    }

    code = StringField(required=True)
    district = StringField(required=True)
    procedure_code = StringField(required=True)
    status = IntField(required=True)
    current_unit = StringField(null=True)  # slug of the active step's unit
    current_role = StringField(null=True)
    step_index = IntField(null=True)
    step_deadline = DateTimeField(null=True)
    claimed_by = StringField(null=True)  # official id of the active step's actor
    due_at = DateTimeField(required=True)
    next_check_at = DateTimeField(null=True)
    instance = DictField(required=True)  # WorkflowInstance.to_dict()


@dataclass(frozen=True)
class StoredInstance:
    """An instance as loaded, with the stored document (its version and outbox)."""

    instance: WorkflowInstance
    doc: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.doc["version"])


def to_document(instance: WorkflowInstance, now: dt.datetime,
                soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> dict[str, Any]:
    """The document fields of ``instance`` (without version and outbox)."""
    step = instance.current
    return {
        "_id": instance.dossier_id, "code": instance.code, "district": instance.district,
        "procedure_code": instance.procedure_code, "status": int(instance.status),
        "current_unit": step.unit if step else None, "current_role": step.role.value if step else None,
        "step_index": step.index if step else None, "step_deadline": step.deadline if step else None,
        "claimed_by": (step.actor or None) if step else None,
        "due_at": instance.due_at, "next_check_at": next_check_at(instance, now, soon_hours),
        "instance": instance.to_dict(),
    }


def from_document(doc: dict[str, Any], calendar: Calendar) -> StoredInstance:
    return StoredInstance(WorkflowInstance.from_dict(doc["instance"], calendar), doc)
