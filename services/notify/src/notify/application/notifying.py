"""Notify's use cases: remember the applicant of a received dossier, and record one notification
per applicant for each notifiable event — once, however often the event arrives (the
notification's id derives from the event's id; each write is a unit of work)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event
from motcua.protobufs import timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork
from notify.adapters.records import NotificationRecord, RecipientRecord
from notify.domain.notifications import Recipient, message_for, notification_id

log = logging.getLogger(__name__)
SOURCE = "/motcua/notify"


@dataclass(frozen=True)
class NotifyApplicant:
    """Tell the applicant of dossier ``code`` about the public event ``event_id`` (a notifiable one)."""

    event_id: str
    event_type: str  # vn.motcua.dossier.result_ready.v1
    event_name: str  # dossier.result_ready
    code: str
    area: str
    traceparent: str | None = None


@dataclass(frozen=True)
class RememberApplicant:
    """A dossier was received: keep how to reach its applicant, then tell them (``then``)."""

    code: str
    area: str
    receiving_unit: str
    full_name: str
    email: str
    phone: str
    then: NotifyApplicant


class Notifier:
    """Handles :class:`RememberApplicant` and :class:`NotifyApplicant`."""

    def __init__(self, uows: UnitsOfWork, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._uows = uows
        self._clock = clock

    def remember(self, c: RememberApplicant) -> None:
        self._uows.run(lambda uow: self._remember(uow, c), what=f"remembering the applicant of {c.code}")
        self.notify(c.then)

    def notify(self, c: NotifyApplicant) -> None:
        self._uows.run(lambda uow: self._notify(uow, c), what=f"notifying the applicant of {c.code}")

    @staticmethod
    def _remember(uow: UnitOfWork, c: RememberApplicant) -> None:
        if uow.get(RecipientRecord, c.code) is not None:
            return  # known from an earlier delivery
        uow.add(RecipientRecord, {"_id": c.code, "area": c.area, "receiving_unit": c.receiving_unit,
                                  "full_name": c.full_name, "email": c.email, "phone": c.phone})
        uow.commit()

    def _notify(self, uow: UnitOfWork, c: NotifyApplicant) -> None:
        doc = uow.get(RecipientRecord, c.code)
        if doc is None:  # the dossier.received event has not been handled yet: retried later
            raise LookupError(f"no recipient known yet for {c.code}")
        recipient = Recipient(code=doc["_id"], full_name=doc["full_name"], email=doc.get("email") or "",
                              phone=doc.get("phone") or "")
        notification = notification_id(c.event_id, recipient)
        if uow.get(NotificationRecord, notification) is not None:
            return
        now = self._clock()
        unit = doc.get("receiving_unit") or ""
        sent = build_event(name="notification.sent", source=SOURCE, subject=c.code, area=c.area,
                           traceparent=c.traceparent, data=events_pb2.NotificationSent(
                               notification_id=notification, code=c.code, area=c.area, receiving_unit=unit,
                               district=unit, cause_type=c.event_type, channel=recipient.channel,
                               sent_at=timestamp(now)))
        uow.add(NotificationRecord, {
            "_id": notification, "code": c.code, "area": c.area, "cause_type": c.event_type,
            "cause_event_id": c.event_id, "channel": recipient.channel, "address": recipient.address,
            "text": message_for(c.event_name, c.code), "status": "sent", "sent_at": now}, [sent])
        uow.commit()
        log.info("applicant notified", extra={"cause": c.event_type, "channel": recipient.channel})
