"""What archive's worker takes from ``archive.<area>``, as the application's messages."""

from __future__ import annotations

from archive.application.archiving import ArchiveDossier
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
        returned_at=datetime_of(returned.returned_at), traceparent=event.traceparent)


INBOUND = Inbound(events={"dossier.returned": archive_dossier})
