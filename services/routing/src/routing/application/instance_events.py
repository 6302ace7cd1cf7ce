"""The public events of a workflow instance's facts (protobuf messages of
``protos/motcua/events/v1/events.proto``, as CloudEvents).

Facts that belong to another service's event, or that nobody outside routing needs yet, publish
nothing here: ``supplemented`` and ``withdrawn`` (intake publishes dossier.supplemented and
dossier.withdrawn), ``supplement_expired`` under keep_waiting (only noted on the timeline) and
``signing_failed`` (the signing service publishes its own outcome).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import CloudEvent, build_event
from motcua.protobufs import document_ref, timestamp
from routing.domain.instance import Fact, FactKind, WorkflowInstance

SOURCE = "/motcua/routing"
UNPUBLISHED = frozenset({FactKind.SUPPLEMENTED, FactKind.WITHDRAWN, FactKind.SUPPLEMENT_EXPIRED,
                         FactKind.SIGNING_FAILED})


def events_of(instance: WorkflowInstance, traceparent: str | None = None) -> list[CloudEvent]:
    """One event per publishable fact, in order."""
    out = []
    for fact in instance.facts:
        if fact.kind in UNPUBLISHED:
            continue
        name, data = message_of(instance, fact)
        out.append(build_event(name=name, data=data, source=SOURCE, subject=instance.code,
                               district=instance.district, traceparent=traceparent, time=fact.at))
    return out


def _at(value: Any) -> Any:
    return timestamp(dt.datetime.fromisoformat(value)) if isinstance(value, str) and value else None


def _ref(value: Any) -> Any:
    return document_ref(value) if isinstance(value, Mapping) and value else None


def message_of(w: WorkflowInstance, fact: Fact) -> tuple[str, Message]:
    common = {"dossier_id": w.dossier_id, "code": w.code, "district": w.district}
    d = fact.data
    at = timestamp(fact.at)
    step = w.steps[fact.step_index] if fact.step_index is not None else None
    kind = fact.kind
    if kind is FactKind.ASSIGNED:
        return "dossier.assigned", events_pb2.DossierAssigned(
            **common, step=fact.step_name, role=fact.role, unit_id=step.unit_id if step else "", assigned_at=at,
            status=int(w.status), unit=fact.unit, step_index=fact.step_index or 0,
            step_deadline=timestamp(step.deadline) if step else None, assignee=fact.actor)
    if kind is FactKind.STEP_COMPLETED:
        return "dossier.step_completed", events_pb2.StepCompleted(
            **common, step=fact.step_name, role=fact.role, actor=fact.actor, completed_at=at)
    if kind is FactKind.FORWARDED:
        return "dossier.forwarded", events_pb2.DossierForwarded(
            **common, step=fact.step_name, role=fact.role, step_index=fact.step_index or 0,
            from_unit=d.get("from_unit", ""), to_unit=d.get("to_unit", ""), to_unit_id=d.get("to_unit_id", ""),
            actor=fact.actor, reason=d.get("reason", ""), forwarded_at=at)
    if kind is FactKind.TRANSFERRED:
        return "dossier.transferred", events_pb2.DossierTransferred(
            **common, step=fact.step_name, role=fact.role, step_index=fact.step_index or 0,
            from_unit=d.get("from_unit", ""), to_unit=d.get("to_unit", ""), to_unit_id=d.get("to_unit_id", ""),
            to_level=d.get("to_level", ""), actor=fact.actor, reason=d.get("reason", ""), transferred_at=at)
    if kind is FactKind.SUPPLEMENT_REQUESTED:
        return "dossier.supplement_requested", events_pb2.SupplementRequested(
            **common, reason=d.get("reason", ""), requested_by=fact.actor, requested_at=at,
            supplement_deadline=_at(d.get("deadline")), due_at=timestamp(w.due_at), status=int(w.status))
    if kind is FactKind.PAYMENT_REQUESTED:
        return "dossier.payment_requested", events_pb2.PaymentRequested(
            **common, amount=int(d.get("amount", 0)), note=d.get("note", ""), requested_by=fact.actor,
            requested_at=at, status=int(w.status))
    if kind is FactKind.PAYMENT_RECORDED:
        return "dossier.payment_recorded", events_pb2.PaymentRecorded(
            **common, amount=int(d.get("amount", 0)), receipt=d.get("receipt", ""), recorded_by=fact.actor,
            recorded_at=at, status=int(w.status))
    if kind is FactKind.SIGNING_REQUESTED:
        return "dossier.signing_requested", events_pb2.SigningRequested(
            **common, signing_request_id=d.get("signing_request_id", ""), draft=_ref(d.get("draft")))
    if kind is FactKind.RESULT_READY:
        return "dossier.result_ready", events_pb2.ResultReady(
            **common, result=_ref(d.get("result")), ready_at=at, status=int(w.status))
    if kind is FactKind.RETURNED:
        return "dossier.returned", events_pb2.DossierReturned(
            **common, procedure_code=w.procedure_code, result=_ref(w.result), returned_at=at,
            status=int(w.status), received_at=timestamp(w.received_at))
    if kind is FactKind.REFUSED:
        return "dossier.stopped", events_pb2.DossierStopped(
            **common, reason=d.get("reason", ""), cause=d.get("cause", ""), actor=fact.actor, step=fact.step_name,
            unit=fact.unit, stopped_at=at, status=int(w.status))
    if kind is FactKind.APOLOGY_ISSUED:
        return "dossier.apology_issued", events_pb2.ApologyIssued(
            **common, reason=d.get("reason", ""), previous_due_at=_at(d.get("previous_due_at")),
            new_due_at=_at(d.get("new_due_at")), issued_at=at, late=bool(d.get("late")))
    raise ValueError(f"no public event for fact {kind}")  # pragma: no cover - UNPUBLISHED lists the rest
