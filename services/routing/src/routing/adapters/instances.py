"""How routing stores workflow instances: one document per dossier, the whole instance as JSON
(``instance``) beside the fields queries need, copied from it on every write and indexed.

The port answers only index-bound queries (a filter must narrow on ``_id`` or the first field of a
declared index), so each question officials and sweeps ask has its index:

* the tasks of a unit, by step deadline: ``(current_unit, step_deadline)`` (and with the role);
* the tasks an official claimed, by step deadline: ``(claimed_by, step_deadline)``;
* what an area's sweep must look at: ``(area, next_check_at)``;
* a dossier by its code: ``code`` (unique);
* the operators' gauge of an area's dossiers at work, by status: ``(area, status)``;
* the Decision 766 indicators (:mod:`routing.application.statistics`), for a receiving unit
  (``receiving_unit``) or for an area (``area``: a district with its communes, or the province with
  its agencies): received by channel ``(…, channel, received_at)``, finished by class
  ``(…, finish_class, ended_at)``, returned ``(…, returned_at)``, open by state
  ``(…, open_state, due_at)``. ``finish_class`` and ``open_state`` are the classification of
  :mod:`routing.domain.kpi766` written with the instance, so every count is an index range.

``current_*`` and ``claimed_by`` describe the active step and are None once the dossier is closed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from mongoengine import DateTimeField, DictField, IntField, StringField

from motcua.messaging.outbox import AggregateSchema
from motcua.store.port import Mapper
from motcua.worktime import Calendar
from routing.domain.instance import WorkflowInstance
from routing.domain.kpi766 import DossierSnapshot, finish_class, open_state, snapshot_of
from routing.domain.sla import DEFAULT_SOON_HOURS, next_check_at


class InstanceRecord(AggregateSchema):
    meta = {
        "collection": "workflow_instances",
        "indexes": [
            {"fields": ["code"], "unique": True},
            ("current_unit", "step_deadline"),
            ("current_unit", "current_role", "step_deadline"),
            ("claimed_by", "step_deadline"),
            ("area", "next_check_at"),
            ("receiving_unit", "status", "due_at"),
            ("area", "status"),  # the operators' gauge of dossiers at work by status (statistics.at_work)
            ("procedure_code", "receiving_unit"),
            ("receiving_unit", "received_at"),  # the unit's register (form 06), in order of reception
            ("receiving_unit", "channel", "received_at"),
            ("area", "channel", "received_at"),
            ("receiving_unit", "finish_class", "ended_at"),
            ("area", "finish_class", "ended_at"),
            ("receiving_unit", "returned_at"),
            ("area", "returned_at"),
            ("receiving_unit", "open_state", "due_at"),
            ("area", "open_state", "due_at"),
        ],
    }

    code = StringField(required=True)
    receiving_unit = StringField(required=True)
    procedure_code = StringField(required=True)
    status = IntField(required=True)
    current_unit = StringField(null=True)  # slug of the active step's unit
    current_role = StringField(null=True)
    step_index = IntField(null=True)
    step_deadline = DateTimeField(null=True)
    claimed_by = StringField(null=True)  # official id of the active step's actor
    due_at = DateTimeField(required=True)
    next_check_at = DateTimeField(null=True)
    # Decision 766 (see the module's docstring)
    area = StringField(required=True)
    channel = StringField(required=True, choices=("desk", "online", "post"))
    received_at = DateTimeField(required=True)
    ended_at = DateTimeField(null=True)  # left processing: result ready, stopped, withdrawn
    finish_class = StringField(null=True, choices=("early", "on_time", "late", "withdrawn"))
    returned_at = DateTimeField(null=True)
    open_state = StringField(required=True, choices=("in_process", "paused", "ended"))
    instance = DictField(required=True)  # WorkflowInstance.to_dict()
    revision = IntField(min_value=1)  # changes of the instance (see StoredInstance.version)


def to_document(instance: WorkflowInstance, now: dt.datetime,
                soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> dict[str, Any]:
    """The document fields of ``instance`` (without version and outbox)."""
    step = instance.current
    return {
        "_id": instance.dossier_id, "code": instance.code, "receiving_unit": instance.receiving_unit,
        "procedure_code": instance.procedure_code, "status": int(instance.status),
        "current_unit": step.unit if step else None, "current_role": step.role.value if step else None,
        "step_index": step.index if step else None, "step_deadline": step.deadline if step else None,
        "claimed_by": (step.actor or None) if step else None,
        "next_check_at": next_check_at(instance, now, soon_hours),
        "area": instance.area, **indicator_fields(snapshot_of(instance, instance.channel)),
        "instance": instance.to_dict(),
    }


def indicator_fields(snapshot: DossierSnapshot) -> dict[str, Any]:
    """The indexed columns the Decision 766 statistics count (routing.application.statistics)."""
    return {"channel": snapshot.channel.value, "received_at": snapshot.received_at, "due_at": snapshot.due_at,
            "ended_at": snapshot.finished_at, "finish_class": finish_class(snapshot),
            "returned_at": snapshot.returned_at, "open_state": open_state(snapshot)}


def from_document(doc: dict[str, Any], calendar: Calendar) -> WorkflowInstance:
    return WorkflowInstance.from_dict(doc["instance"], calendar)


INSTANCES = Mapper(InstanceRecord, to_document, from_document)  # what the entrypoints hand Instances
