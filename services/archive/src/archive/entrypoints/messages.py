"""What archive's worker takes from ``archive.<area>``, as the application's messages: the events
of a dossier's life (its PREMIS log) and dossier.returned (archive it)."""

from __future__ import annotations

from archive.application.archiving import ArchiveDossier, RecordLifeEvent
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import CloudEvent
from motcua.messaging.inbound import Inbound
from motcua.protobufs import datetime_of, document_ref_dict


def archive_dossier(event: CloudEvent) -> ArchiveDossier:
    returned = event.decode(events_pb2.DossierReturned)
    return ArchiveDossier(
        dossier_id=returned.dossier_id, code=returned.code, area=event.area,
        receiving_unit=returned.receiving_unit or returned.district, procedure_code=returned.procedure_code,
        documents=tuple(document_ref_dict(d) for d in returned.documents),
        result=document_ref_dict(returned.result), received_at=datetime_of(returned.received_at),
        returned_at=datetime_of(returned.returned_at), traceparent=event.traceparent, event_id=event.id,
        forms=tuple(document_ref_dict(f) for f in returned.forms), forms_to_follow=tuple(returned.forms_to_follow))


def _life(event: CloudEvent, message, at, actors=(), detail: str = "", **extra) -> RecordLifeEvent:
    return RecordLifeEvent(dossier_id=message.dossier_id, code=message.code, area=event.area, event_id=event.id,
                           type=event.name, at=datetime_of(at) if at.seconds or at.nanos else event.time,
                           actors=tuple(a for a in actors if a), detail=detail, **extra)


def received(event: CloudEvent) -> RecordLifeEvent:
    m = event.decode(events_pb2.DossierReceived)
    receipt = document_ref_dict(m.receipt) if m.receipt.key else None
    return _life(event, m, m.received_at, (m.receiving_unit or m.district,),
                 f"received by {m.channel or 'desk'} for procedure {m.procedure_code} v{m.procedure_version}",
                 retention=m.retention, procedure_name=m.procedure_name, applicant=m.applicant.full_name,
                 receipt=receipt)


def form_issued(event: CloudEvent) -> RecordLifeEvent:
    m = event.decode(events_pb2.FormIssued)
    document = document_ref_dict(m.document) if m.document.key else None
    return _life(event, m, m.issued_at, (m.receiving_unit,), f"form {m.form} issued, sealed by {m.receiving_unit}",
                 receipt=document if m.form == "01" else None, form=m.form, document=document)


def assigned(event: CloudEvent) -> RecordLifeEvent:
    m = event.decode(events_pb2.DossierAssigned)
    return _life(event, m, m.assigned_at, (m.assignee or m.unit,), f"step {m.step} ({m.role}) assigned")


def step_completed(event: CloudEvent) -> RecordLifeEvent:
    m = event.decode(events_pb2.StepCompleted)
    return _life(event, m, m.completed_at, (m.actor,), f"step {m.step} ({m.role}) completed")


def supplemented(event: CloudEvent) -> RecordLifeEvent:
    m = event.decode(events_pb2.DossierSupplemented)
    return _life(event, m, m.supplemented_at, (), f"supplemented with {len(m.documents)} documents")


def signed(event: CloudEvent) -> RecordLifeEvent:
    m = event.decode(events_pb2.DocumentSigned)
    # level, official_id and seal_unit come with the signing work's events.proto (read when present)
    level = getattr(m, "level", "")
    actors = (*m.signers, getattr(m, "official_id", ""), getattr(m, "seal_unit", ""))
    return _life(event, m, m.signed_at, tuple(dict.fromkeys(a for a in actors if a)),
                 f"result signed (request {m.signing_request_id}{f', PAdES {level}' if level else ''})")


INBOUND = Inbound(events={"dossier.returned": archive_dossier, "dossier.received": received,
                          "dossier.form_issued": form_issued,
                          "dossier.assigned": assigned, "dossier.step_completed": step_completed,
                          "dossier.supplemented": supplemented, "document.signed": signed})
