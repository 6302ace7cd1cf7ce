"""What notify's worker takes from ``notify.<area>`` (every public event of the area), as the
application's messages: dossier.received → RememberApplicant; every other notifiable event →
NotifyApplicant; the rest is not the applicant's business and is ignored."""

from __future__ import annotations

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import CloudEvent
from motcua.messaging.inbound import Inbound
from notify.application.notifying import NotifyApplicant, RememberApplicant
from notify.domain.notifications import NOTIFIABLE


def notify_applicant(event: CloudEvent) -> NotifyApplicant:
    return NotifyApplicant(event_id=event.id, event_type=event.type, event_name=event.name, code=event.subject,
                           area=event.area, traceparent=event.traceparent)


def remember_applicant(event: CloudEvent) -> RememberApplicant:
    received = event.decode(events_pb2.DossierReceived)
    return RememberApplicant(code=event.subject, area=event.area,
                             receiving_unit=received.receiving_unit or received.district,
                             full_name=received.applicant.full_name, email=received.applicant.email,
                             phone=received.applicant.phone, then=notify_applicant(event))


INBOUND = Inbound(events={**dict.fromkeys(NOTIFIABLE, notify_applicant), "dossier.received": remember_applicant})
