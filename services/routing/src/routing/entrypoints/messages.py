"""What routing's worker takes from ``routing.<area>``, as the application's messages: intake's
and signing's work, and the two public events of intake it follows."""

from __future__ import annotations

from collections.abc import Callable

from motcua.errors import InvalidArgument
from motcua.events.v1 import events_pb2
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import CloudEvent, WorkMessage
from motcua.messaging.inbound import Inbound
from motcua.protobufs import document_ref_dict
from routing.application.repository import Instances
from routing.application.systems import OpenWorkflow, ReportToWorkflow, RoutingWork
from routing.domain.actions import INTAKE, SIGNING, Signed, SupplementReceived, Withdrawn


def _text(work: WorkMessage, key: str) -> str:
    value = work.body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(key, "is required")
    return value


def open_workflow(work: WorkMessage) -> OpenWorkflow:
    return OpenWorkflow(body=work.body, code=str(work.body.get("code") or ""), area=str(work.body.get("area") or ""),
                        traceparent=work.traceparent)


def signing_completed(work: WorkMessage) -> ReportToWorkflow:
    body = work.body
    signed = Signed(signing_request_id=body.get("signing_request_id", ""), signers=tuple(body.get("signers") or ()),
                    result=dict(body.get("signed") or {}))
    return ReportToWorkflow(dossier_id=_text(work, "dossier_id"), command=signed, by=SIGNING, message_id=work.id,
                            code=str(body.get("code") or ""), area=str(body.get("area") or ""),
                            traceparent=work.traceparent)


def supplemented(event: CloudEvent) -> ReportToWorkflow:
    data = event.decode(events_pb2.DossierSupplemented)
    command = SupplementReceived(documents=tuple(document_ref_dict(d) for d in data.documents))
    return ReportToWorkflow(dossier_id=data.dossier_id, command=command, by=INTAKE, message_id=event.id,
                            code=event.subject, area=event.area, traceparent=event.traceparent)


def withdrawn(event: CloudEvent) -> ReportToWorkflow:
    data = event.decode(events_pb2.DossierWithdrawn)
    return ReportToWorkflow(dossier_id=data.dossier_id, command=Withdrawn(reason=data.reason), by=INTAKE,
                            message_id=event.id, code=event.subject, area=event.area, traceparent=event.traceparent)


INBOUND = Inbound(work={"routing.route_dossier": open_workflow, "routing.signing_completed": signing_completed},
                  events={"dossier.supplemented": supplemented, "dossier.withdrawn": withdrawn})


def dispatcher(instances: Instances) -> Callable[[Delivery], None]:
    """The worker's handler of one delivery."""
    return INBOUND.dispatch(RoutingWork(instances).bus())
