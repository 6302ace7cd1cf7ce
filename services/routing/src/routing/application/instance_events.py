"""The messages of a workflow instance's facts: public events (protobuf messages of
``protos/motcua/events/v1/events.proto``, as CloudEvents) and the work they ask of signing.

Facts that belong to another service's event, or that nobody outside routing needs yet, publish
nothing here: ``supplemented`` and ``withdrawn`` (intake publishes dossier.supplemented and
dossier.withdrawn) and ``supplement_expired`` under keep_waiting (only noted on the timeline).
``signing_failed`` is ``dossier.signing_failed``: the dossier is back at its sign step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import CloudEvent, WorkMessage, build_event, build_work
from motcua.protobufs import document_ref, timestamp
from motcua.work.v1 import work_pb2
from routing.domain.instance import Fact, FactKind, WorkflowInstance

SOURCE = "/motcua/routing"
CONTROL_SLIP_FORM = "05"  # the processing control slip (Circular 01/2018/TT-VPCP), as FormIssued.form names it
UNPUBLISHED = frozenset({FactKind.SUPPLEMENTED, FactKind.WITHDRAWN, FactKind.SUPPLEMENT_EXPIRED})


def messages_of(instance: WorkflowInstance, traceparent: str | None = None) -> list[CloudEvent | WorkMessage]:
    """What the outbox of the instance's write carries: its events, then its work messages."""
    return [*events_of(instance, traceparent), *work_of(instance, traceparent)]


def work_of(instance: WorkflowInstance, traceparent: str | None = None) -> list[WorkMessage]:
    """``signing.sign_document`` for every draft an official approved: the signing service applies
    the personal signature of the official who approved and the seal of the issuing unit, and
    answers with ``routing.signing_completed`` (or ``routing.signing_failed``). The message id is
    the signing request id, so a re-sent request is signed once. ``routing.render_form`` (form 05)
    for a returned dossier: routing's own worker renders, seals and records it."""
    out = []
    for fact in instance.facts:
        if fact.kind is FactKind.RETURNED and not instance.control_slip:
            out.append(build_work(service="routing", area=instance.area, type="routing.render_form",
                                  id=f"form-{CONTROL_SLIP_FORM}:{instance.dossier_id}", traceparent=traceparent,
                                  data=work_pb2.RenderForm(dossier_id=instance.dossier_id, form=CONTROL_SLIP_FORM)))
        if fact.kind is not FactKind.SIGNING_REQUESTED:
            continue
        request_id = fact.data["signing_request_id"]
        out.append(build_work(service="signing", area=instance.area, type="signing.sign_document",
                              id=request_id, traceparent=traceparent, data=work_pb2.SignDocument(
                                  signing_request_id=request_id, dossier_id=instance.dossier_id,
                                  code=instance.code, receiving_unit=instance.receiving_unit, area=instance.area,
                                  document=_ref(fact.data.get("draft")), official_id=fact.data.get("official_id", ""),
                                  seal_unit=fact.data.get("seal_unit", ""),
                                  seal_unit_id=fact.data.get("seal_unit_id", ""))))
    return out


def events_of(instance: WorkflowInstance, traceparent: str | None = None) -> list[CloudEvent]:
    """One event per publishable fact, in order."""
    out = []
    for fact in instance.facts:
        if fact.kind in UNPUBLISHED:
            continue
        name, data = message_of(instance, fact)
        out.append(build_event(name=name, data=data, source=SOURCE, subject=instance.code,
                               area=instance.area, traceparent=traceparent,
                               time=fact.at.astimezone(dt.UTC)))  # UTC like every service's events
    return out


def _at(value: Any) -> Any:
    return timestamp(dt.datetime.fromisoformat(value)) if isinstance(value, str) and value else None


def _ref(value: Any) -> Any:
    return document_ref(value) if isinstance(value, Mapping) and value else None


def message_of(w: WorkflowInstance, fact: Fact) -> tuple[str, Message]:
    # ``district`` is the v1 field that always held the receiving unit (deprecated, still filled)
    common = {"dossier_id": w.dossier_id, "code": w.code, "receiving_unit": w.receiving_unit, "area": w.area,
              "district": w.receiving_unit}
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
            supplement_deadline=_at(d.get("deadline")), due_at=timestamp(w.due_at), status=int(w.status),
            components=d.get("components") or [], form=document_ref(d["form"]) if d.get("form") else None)
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
    if kind is FactKind.SIGNING_FAILED:
        return "dossier.signing_failed", events_pb2.SigningFailed(
            **common, signing_request_id=d.get("signing_request_id", ""), reason=d.get("reason", ""),
            step=fact.step_name, official_id=d.get("official_id", ""), failed_at=at)
    if kind is FactKind.RESULT_READY:
        return "dossier.result_ready", events_pb2.ResultReady(
            **common, result=_ref(d.get("result")), ready_at=at, status=int(w.status))
    if kind is FactKind.RETURNED:
        # Form 05 follows (routing's worker issues it from this write's routing.render_form): the
        # archive waits for its dossier.form_issued before it packs the dossier.
        return "dossier.returned", events_pb2.DossierReturned(
            **common, procedure_code=w.procedure_code, result=_ref(w.result), returned_at=at,
            documents=[document_ref(d) for d in w.documents],
            status=int(w.status), received_at=timestamp(w.received_at), forms=[document_ref(f) for f in w.forms],
            forms_to_follow=[] if w.control_slip else [CONTROL_SLIP_FORM])
    if kind is FactKind.CONTROL_SLIP_ISSUED:
        return "dossier.form_issued", events_pb2.FormIssued(
            dossier_id=w.dossier_id, code=w.code, form=CONTROL_SLIP_FORM, document=_ref(d.get("form")),
            issued_at=at, receiving_unit=w.receiving_unit, area=w.area)
    if kind is FactKind.REFUSED:
        return "dossier.stopped", events_pb2.DossierStopped(
            **common, reason=d.get("reason", ""), cause=d.get("cause", ""), actor=fact.actor, step=fact.step_name,
            unit=fact.unit, stopped_at=at, status=int(w.status), notice=_ref(d.get("notice")))
    if kind is FactKind.APOLOGY_ISSUED:
        return "dossier.apology_issued", events_pb2.ApologyIssued(
            **common, reason=d.get("reason", ""), previous_due_at=_at(d.get("previous_due_at")),
            new_due_at=_at(d.get("new_due_at")), issued_at=at, late=bool(d.get("late")), form=_ref(d.get("form")))
    if kind in (FactKind.DUE_SOON, FactKind.OVERDUE):
        name, cls = (("dossier.due_soon", events_pb2.DossierDueSoon) if kind is FactKind.DUE_SOON
                     else ("dossier.overdue", events_pb2.DossierOverdue))
        return name, cls(**common, scope=d.get("scope", ""), step=fact.step_name, role=fact.role, unit=fact.unit,
                         step_index=fact.step_index or 0, deadline=_at(d.get("deadline")), detected_at=at,
                         status=int(w.status))
    raise ValueError(f"no public event for fact {kind}")  # pragma: no cover - UNPUBLISHED lists the rest
