"""Notify's use case: on each public event, remember the applicant (dossier.received) and record
one notification per applicant for the notifiable ones."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from motcua.events.v1 import events_pb2
from motcua.logs import bind
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import CloudEvent, InvalidEnvelope, build_event, parse_event
from motcua.messaging.outbox import Outbox, add_messages, message_ids
from motcua.protobufs import timestamp
from motcua.store.port import DuplicateKey, Store
from notify.adapters.records import NotificationRecord, RecipientRecord
from notify.domain.notifications import Recipient, is_notifiable, message_for, notification_id

log = logging.getLogger(__name__)
SOURCE = "/motcua/notify"


class Notifier:
    def __init__(self, store: Store, outbox: Outbox, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._recipients = store.collection(RecipientRecord)
        self._notifications = store.collection(NotificationRecord)
        self._outbox = outbox
        self._clock = clock

    def dispatch(self, delivery: Delivery) -> None:
        try:
            event = parse_event(delivery.body, delivery.headers, delivery.content_type)
        except InvalidEnvelope as exc:
            raise PermanentFailure(str(exc)) from exc
        with bind(dossier_code=event.subject, area=event.area):
            if event.name == "dossier.received":
                self._remember_applicant(event)
            if is_notifiable(event.name):
                self._notify(event)

    def _remember_applicant(self, event: CloudEvent) -> None:
        received = event.decode(events_pb2.DossierReceived)
        with contextlib.suppress(DuplicateKey):  # already known from an earlier delivery
            self._recipients.insert({"_id": received.code, "area": event.area,
                                     "receiving_unit": received.receiving_unit or received.district,
                                     "full_name": received.applicant.full_name,
                                     "email": received.applicant.email, "phone": received.applicant.phone})

    def _notify(self, event: CloudEvent) -> None:
        doc = self._recipients.get(event.subject)
        if doc is None:
            # The dossier.received event has not been handled yet: retry later.
            raise LookupError(f"no recipient known yet for {event.subject}")
        recipient = Recipient(code=doc["_id"], full_name=doc["full_name"], email=doc.get("email") or "",
                              phone=doc.get("phone") or "")
        notification = notification_id(event.id, recipient)
        if self._notifications.get(notification) is not None:
            return
        now = self._clock()
        sent = build_event(name="notification.sent", source=SOURCE, subject=event.subject,
                           area=event.area, traceparent=event.traceparent,
                           data=events_pb2.NotificationSent(
                               notification_id=notification, code=event.subject, area=event.area,
                               receiving_unit=doc.get("receiving_unit") or "", district=doc.get("receiving_unit") or "",
                               cause_type=event.type, channel=recipient.channel, sent_at=timestamp(now)))
        record = add_messages({
            "_id": notification, "code": event.subject, "area": event.area,
            "cause_type": event.type, "cause_event_id": event.id, "channel": recipient.channel,
            "address": recipient.address, "text": message_for(event.name, event.subject),
            "status": "sent", "sent_at": now}, [sent])
        try:
            stored = self._notifications.insert(record)
        except DuplicateKey:
            return
        log.info("applicant notified", extra={"cause": event.type, "channel": recipient.channel})
        self._outbox.flush(self._notifications, stored, message_ids([sent]))
