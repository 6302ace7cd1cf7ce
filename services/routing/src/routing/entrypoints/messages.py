"""What routing's worker takes from ``routing.<area>``, as the application's messages: intake's
and signing's work, its own form 05 of a returned dossier, and the two public events of intake it
follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from motcua.errors import InvalidArgument
from motcua.events.v1 import events_pb2
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import CloudEvent, WorkMessage
from motcua.messaging.inbound import Inbound
from motcua.protobufs import datetime_of, document_ref_dict
from motcua.work.v1 import work_pb2
from routing.application.instance_events import CONTROL_SLIP_FORM
from routing.application.repository import Instances
from routing.application.systems import ControlSlips, IssueControlSlip, OpenWorkflow, ReportToWorkflow, RoutingWork
from routing.domain.actions import INTAKE, SIGNING, Signed, SigningFailed, SupplementReceived, Withdrawn

APPLICANT_FIELDS = ("full_name", "address", "phone", "email")  # what the register (form 06) shows


def open_workflow(work: WorkMessage) -> OpenWorkflow:
    route = work.decode(work_pb2.RouteDossier)
    return OpenWorkflow(body=route_body(route), code=route.code, area=route.area, traceparent=work.traceparent)


def route_body(route: work_pb2.RouteDossier) -> dict[str, Any]:
    """The form the workflow domain reads (``WorkflowInstance.open``, ``ProcessDefinition.from_dict``),
    which checks every field and names the one it refuses."""
    process = route.process
    return {
        "dossier_id": route.dossier_id, "code": route.code, "procedure_code": route.procedure_code,
        "procedure_version": route.procedure_version, "receiving_unit": route.receiving_unit, "area": route.area,
        "unit_id": route.unit_id, "channel": route.channel or "desk",
        "received_at": datetime_of(route.received_at, "received_at") if route.HasField("received_at") else None,
        "due_at": datetime_of(route.due_at, "due_at") if route.HasField("due_at") else None,
        "documents": [document_ref_dict(d) for d in route.documents],
        "applicant": {k: getattr(route.applicant, k) for k in APPLICANT_FIELDS if getattr(route.applicant, k)},
        "procedure_name": route.procedure_name,
        "process": {
            "steps": [{"role": s.role, "unit": s.unit, "unit_id": s.unit_id, "level": s.level, "share": s.share,
                       "name": s.name, "forward": s.forward} for s in process.steps],
            "time_type": process.time_type,
            "duration_hours": process.duration_hours if process.HasField("duration_hours") else None,
            "duration_days": process.duration_days if process.HasField("duration_days") else None,
            "supplement_policy": process.supplement_policy,
            **({"supplement_expiry": process.supplement_expiry} if process.supplement_expiry else {}),
            "transfer_targets": [{"unit": t.unit, "unit_id": t.unit_id, "level": t.level}
                                 for t in process.transfer_targets],
        },
    }


def signing_completed(work: WorkMessage) -> ReportToWorkflow:
    done = work.decode(work_pb2.SigningCompleted)
    if not done.dossier_id:
        raise InvalidArgument("dossier_id", "is required")
    signed = Signed(signing_request_id=done.signing_request_id, signers=tuple(done.signers),
                    result=document_ref_dict(done.signed) if done.HasField("signed") else {})
    return ReportToWorkflow(dossier_id=done.dossier_id, command=signed, by=SIGNING, message_id=work.id,
                            code=done.code, area=done.area, traceparent=work.traceparent)


def signing_failed(work: WorkMessage) -> ReportToWorkflow:
    """Signing refused the draft (no enrolled, valid certificate...): the dossier stays at its sign
    step, whose official may approve again once the cause is fixed."""
    failed = work.decode(work_pb2.SigningFailed)
    if not failed.dossier_id:
        raise InvalidArgument("dossier_id", "is required")
    command = SigningFailed(signing_request_id=failed.signing_request_id, reason=failed.reason)
    return ReportToWorkflow(dossier_id=failed.dossier_id, command=command, by=SIGNING, message_id=work.id,
                            code=failed.code, area=failed.area, traceparent=work.traceparent)


def render_form(work: WorkMessage) -> IssueControlSlip:
    """The return's ``routing.render_form``: form 05 is the one form routing's worker renders."""
    form = work.decode(work_pb2.RenderForm)
    if not form.dossier_id:
        raise InvalidArgument("dossier_id", "is required")
    if form.form != CONTROL_SLIP_FORM:
        raise InvalidArgument("form", f"routing's worker renders form {CONTROL_SLIP_FORM} only, not {form.form!r}")
    return IssueControlSlip(dossier_id=form.dossier_id, traceparent=work.traceparent)


def supplemented(event: CloudEvent) -> ReportToWorkflow:
    data = event.decode(events_pb2.DossierSupplemented)
    command = SupplementReceived(documents=tuple(document_ref_dict(d) for d in data.documents))
    return ReportToWorkflow(dossier_id=data.dossier_id, command=command, by=INTAKE, message_id=event.id,
                            code=event.subject, area=event.area, traceparent=event.traceparent)


def withdrawn(event: CloudEvent) -> ReportToWorkflow:
    data = event.decode(events_pb2.DossierWithdrawn)
    return ReportToWorkflow(dossier_id=data.dossier_id, command=Withdrawn(reason=data.reason), by=INTAKE,
                            message_id=event.id, code=event.subject, area=event.area, traceparent=event.traceparent)


INBOUND = Inbound(work={"routing.route_dossier": open_workflow, "routing.signing_completed": signing_completed,
                        "routing.signing_failed": signing_failed, "routing.render_form": render_form},
                  events={"dossier.supplemented": supplemented, "dossier.withdrawn": withdrawn})


def dispatcher(instances: Instances, control_slips: ControlSlips | None = None) -> Callable[[Delivery], None]:
    """The worker's handler of one delivery (``control_slips``: how form 05 is rendered, sealed and stored)."""
    return INBOUND.dispatch(RoutingWork(instances, control_slips).bus())
