"""The public events and work messages intake emits, built from domain facts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from intake.domain.catalog import Procedure
from intake.domain.dossier import DocumentRef, Dossier
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import CloudEvent, WorkMessage, build_event, build_work
from motcua.protobufs import document_ref, timestamp
from motcua.types.v1 import types_pb2
from motcua.work.v1 import work_pb2

SOURCE = "/motcua/intake"


def document_refs(dossier: Dossier) -> list[types_pb2.DocumentRef]:
    return [document_ref(asdict(d)) for d in dossier.documents]


def applicant_message(applicant: dict[str, str]) -> types_pb2.Applicant:
    return types_pb2.Applicant(**{k: v for k, v in applicant.items() if v})


def _event(name: str, dossier: Dossier, data, traceparent: str | None) -> CloudEvent:
    return build_event(name=name, data=data, source=SOURCE, subject=dossier.code, area=dossier.area,
                       traceparent=traceparent)


def where(dossier: Dossier) -> dict[str, str]:
    """The payload fields saying where a dossier is: the receiving unit and the area (and, for v1
    subscribers, the deprecated ``district``, which always held the receiving unit)."""
    return {"receiving_unit": dossier.receiving_unit, "area": dossier.area, "district": dossier.receiving_unit}


def dossier_submitted(dossier: Dossier, traceparent: str | None) -> CloudEvent:
    return _event("dossier.submitted", dossier, events_pb2.DossierSubmitted(
        dossier_id=dossier.id, code=dossier.code, procedure_code=dossier.procedure_code,
        **where(dossier), unit_id=dossier.unit_id, channel=dossier.channel,
        submitted_at=timestamp(dossier.submitted_at), status=int(dossier.status)), traceparent)


def dossier_received(dossier: Dossier, traceparent: str | None, procedure: Procedure | None = None) -> CloudEvent:
    """``procedure`` (the catalog version received under) adds its retention class and name, which
    the archive keeps the dossier by."""
    return _event("dossier.received", dossier, events_pb2.DossierReceived(
        retention=procedure.retention if procedure else "", procedure_name=procedure.name if procedure else "",
        dossier_id=dossier.id, code=dossier.code, procedure_code=dossier.procedure_code,
        **where(dossier), unit_id=dossier.unit_id,
        applicant=applicant_message(dossier.applicant), documents=document_refs(dossier),
        received_at=timestamp(dossier.received_at), status=int(dossier.status),
        due_at=timestamp(dossier.due_at), channel=dossier.channel,
        procedure_version=str(dossier.procedure_version or "")), traceparent)


def dossier_refused(dossier: Dossier, traceparent: str | None) -> CloudEvent:
    return _event("dossier.refused", dossier, events_pb2.DossierRefused(
        dossier_id=dossier.id, code=dossier.code, **where(dossier),
        reasons=dossier.refusal_reasons, refused_at=timestamp(_last_at(dossier)),
        status=int(dossier.status)), traceparent)


def dossier_withdrawn(dossier: Dossier, traceparent: str | None) -> CloudEvent:
    return _event("dossier.withdrawn", dossier, events_pb2.DossierWithdrawn(
        dossier_id=dossier.id, code=dossier.code, **where(dossier),
        reason=dossier.withdrawal_reason, withdrawn_at=timestamp(_last_at(dossier)),
        status=int(dossier.status)), traceparent)


def dossier_supplemented(dossier: Dossier, added: list[DocumentRef], traceparent: str | None) -> CloudEvent:
    """The applicant answered a supplement request: routing resumes with the new appointment."""
    return _event("dossier.supplemented", dossier, events_pb2.DossierSupplemented(
        dossier_id=dossier.id, code=dossier.code, **where(dossier),
        documents=[document_ref(asdict(d)) for d in added], supplemented_at=timestamp(_last_at(dossier)),
        previous_due_at=timestamp(dossier.previous_due_at[-1]) if dossier.previous_due_at else None,
        due_at=timestamp(dossier.due_at), status=int(dossier.status)), traceparent)


def route_dossier(dossier: Dossier, process: dict[str, Any], traceparent: str | None,
                  procedure_name: str = "") -> WorkMessage:
    """Asks routing to open the dossier's workflow, with the process definition resolved for this
    dossier (``intake.domain.process``), to the queue of the dossier's area."""
    return build_work(service="routing", area=dossier.area, type="routing.route_dossier",
                      id=f"route:{dossier.id}", traceparent=traceparent, data=work_pb2.RouteDossier(
                          dossier_id=dossier.id, code=dossier.code, procedure_code=dossier.procedure_code,
                          procedure_version=dossier.procedure_version or 0, receiving_unit=dossier.receiving_unit,
                          area=dossier.area, unit_id=dossier.unit_id, received_at=timestamp(dossier.received_at),
                          due_at=timestamp(dossier.due_at) if dossier.due_at else None, channel=dossier.channel,
                          process=process_message(process), documents=document_refs(dossier),
                          applicant=applicant_message(dossier.applicant), procedure_name=procedure_name))


def process_message(process: dict[str, Any]) -> work_pb2.ProcessDefinition:
    """``intake.domain.process.process_definition``'s plain form as its work message."""
    durations = {k: process[k] for k in ("duration_hours", "duration_days") if process.get(k) is not None}
    return work_pb2.ProcessDefinition(
        steps=[work_pb2.ProcessStep(**step) for step in process["steps"]], time_type=process["time_type"],
        supplement_policy=process["supplement_policy"], **durations,
        transfer_targets=[work_pb2.UnitRef(**target) for target in process["transfer_targets"]])


def form_issued(dossier: Dossier, form: str, at) -> CloudEvent:
    """Form 01 or 03 sealed and stored by the worker (after the decision's own event, which
    could not carry it yet): what the archive packs as the dossier's receipt."""
    assert dossier.receipt is not None
    return _event("dossier.form_issued", dossier, events_pb2.FormIssued(
        dossier_id=dossier.id, code=dossier.code, form=form, document=document_ref(dossier.receipt),
        issued_at=timestamp(at), receiving_unit=dossier.receiving_unit, area=dossier.area), None)


def render_form(dossier: Dossier, form: str, traceparent: str | None) -> WorkMessage:
    """Asks intake's worker to render and store form 01 (receipt) or 03 (refusal): CPU-heavy PDF
    work stays off the api's request path."""
    return build_work(service="intake", area=dossier.area, type="intake.render_form",
                      id=f"form-{form}:{dossier.id}", traceparent=traceparent,
                      data=work_pb2.RenderForm(dossier_id=dossier.id, form=form))


def _last_at(dossier: Dossier):
    from datetime import datetime

    return datetime.fromisoformat(dossier.history[-1]["at"])
