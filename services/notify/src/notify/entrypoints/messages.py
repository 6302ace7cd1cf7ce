"""What notify's worker takes from ``notify.<area>`` (every public event of the area, and its own
``notify.deliver`` work), as the application's messages: every public event → PublicEventArrived
(for the webhooks) carrying what it means for the applicant: dossier.received → RememberApplicant;
every other notifiable event → NotifyApplicant with the facts its message shows; the rest nothing.
notify.deliver → DeliverNotification."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC

from google.protobuf.message import Message

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import CloudEvent, WorkMessage
from motcua.messaging.inbound import Inbound
from motcua.protobufs import document_ref_dict
from motcua.work.v1 import work_pb2
from notify.application.notifying import DELIVER, DeliverNotification, NotifyApplicant, RememberApplicant
from notify.application.webhooks import PublicEventArrived


def _iso(message: Message, name: str) -> str:
    """A Timestamp field as ISO 8601 text, "" when unset."""
    if not message.HasField(name):
        return ""
    return getattr(message, name).ToDatetime(tzinfo=UTC).isoformat()


def _facts(schema: type[Message], text: tuple[str, ...] = (), times: tuple[str, ...] = (),
           numbers: tuple[str, ...] = ()) -> Callable[[CloudEvent], dict]:
    def read(event: CloudEvent) -> dict:
        data = event.decode(schema)
        return {**{f: getattr(data, f) for f in text}, **{f: _iso(data, f) for f in times},
                **{f: int(getattr(data, f)) for f in numbers}}
    return read


def _supplement_requested(event: CloudEvent) -> dict:
    """What a supplement request shows: the reason, the components wanted, the deadline; and form
    02, which the e-mail carries."""
    data = event.decode(events_pb2.SupplementRequested)
    return {**_facts(events_pb2.SupplementRequested, ("reason",), ("supplement_deadline", "due_at"))(event),
            "components": list(data.components),
            "form": document_ref_dict(data.form) if data.HasField("form") and data.form.key else None}


FACTS: dict[str, Callable[[CloudEvent], dict]] = {
    "dossier.supplement_requested": _supplement_requested,
    "dossier.payment_requested": _facts(events_pb2.PaymentRequested, ("note",), (), ("amount",)),
    "dossier.apology_issued": _facts(events_pb2.ApologyIssued, ("reason",), ("previous_due_at", "new_due_at")),
    "dossier.stopped": _facts(events_pb2.DossierStopped, ("reason", "cause")),
    "dossier.result_ready": _facts(events_pb2.ResultReady, (), ("ready_at",)),
    "dossier.returned": _facts(events_pb2.DossierReturned, (), ("returned_at",)),
}


def notify_applicant(event: CloudEvent) -> NotifyApplicant:
    read = FACTS.get(event.name)
    facts = read(event) if read is not None else {}
    return NotifyApplicant(event_id=event.id, event_type=event.type, event_name=event.name, code=event.subject,
                           area=event.area, traceparent=event.traceparent, facts=facts)


def remember_applicant(event: CloudEvent) -> RememberApplicant:
    received = event.decode(events_pb2.DossierReceived)
    return RememberApplicant(code=event.subject, area=event.area,
                             receiving_unit=received.receiving_unit or received.district,
                             full_name=received.applicant.full_name, email=received.applicant.email,
                             phone=received.applicant.phone, then=notify_applicant(event),
                             procedure_code=received.procedure_code, received_at=_iso(received, "received_at"),
                             due_at=_iso(received, "due_at"), channels=tuple(received.applicant.notify_channels))


def deliver_notification(work: WorkMessage) -> DeliverNotification:
    data = work.decode(work_pb2.DeliverNotification)
    if not data.notification_id:
        raise ValueError("notify.deliver without a notification id")
    return DeliverNotification(notification_id=data.notification_id, code=data.code, area=data.area)


APPLICANT: dict[str, Callable[[CloudEvent], object]] = {
    **dict.fromkeys(FACTS, notify_applicant), "dossier.received": remember_applicant}


def public_event(event: CloudEvent) -> PublicEventArrived:
    build = APPLICANT.get(event.name)
    return PublicEventArrived(event=event, applicant=build(event) if build is not None else None)


class _EveryEvent(Mapping):
    """Every event name → ``build`` (Inbound takes the events a service declares; notify takes all)."""

    def __init__(self, build: Callable[[CloudEvent], object]):
        self._build = build

    def __getitem__(self, name: str) -> Callable[[CloudEvent], object]:
        return self._build

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


INBOUND = Inbound(events=_EveryEvent(public_event), work={DELIVER: deliver_notification})
