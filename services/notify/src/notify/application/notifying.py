"""Notify's use cases.

* :meth:`Notifier.remember` — a dossier was received: keep how to reach its applicant (and the
  procedure's and unit's names the messages show), tell them, and release the notices that came
  before it (events of a dossier whose ``dossier.received`` notify had not seen yet wait for it;
  they are never parked).
* :meth:`Notifier.notify` — a notifiable event: one notification per (event, recipient, channel),
  rendered from its template when it is created and stored already claimed for its first attempt
  (``sending``: one write, which also carries the event's processed record), then sent at once by
  the same handler and its attempt recorded. A worker that dies in between leaves it ``sending``
  for the timer, after the lease.
* :meth:`Notifier.deliver` — claim the notification (``sending``, a version-checked write), hand
  it to its channel, then record the attempt: ``delivered`` with ``notification.sent`` once the
  provider accepted it; ``failed`` with ``notification.failed`` on a permanent refusal or when the
  channel's retry schedule is spent; else ``pending`` again with the next attempt's time. For
  the timer's retries (and a ``notify.deliver`` work message, which notify sent itself before it
  sent the first attempt at once).
* :meth:`Notifier.deliver_due` — the worker's timer: every notification whose next attempt is due,
  and every one left ``sending`` longer than the lease (a worker killed while it sent), each
  delivered on a pool of its own so a slow provider delays no one else.

A worker killed after the provider accepted a message and before the attempt was recorded sends
it again after the lease, with the same idempotency key (the e-mail's Message-ID, the gateway
request's id): at least once, never lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from motcua.events.v1 import events_pb2
from motcua.logs import clip
from motcua.messaging.envelope import build_event
from motcua.protobufs import timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork
from notify.application.ports import (
    AttemptObserver,
    Channel,
    Directory,
    OutgoingNotification,
    PermanentDeliveryError,
    Renderer,
    Schemas,
    TransientDeliveryError,
    unobserved,
)
from notify.domain.delivery import Attachment
from notify.domain.notifications import (
    DELIVERED,
    EMAIL,
    FAILED,
    PENDING,
    SENDING,
    NotifyPolicy,
    Recipient,
    RetrySchedule,
    notification_id,
)

log = logging.getLogger(__name__)
SOURCE = "/motcua/notify"
DELIVER = "notify.deliver"


@dataclass(frozen=True)
class NotifyApplicant:
    """Tell the applicant of dossier ``code`` about the public event ``event_id`` (a notifiable
    one); ``facts`` are what the event says that the message shows (reason, amount, dates as ISO
    8601 text)."""

    event_id: str
    event_type: str  # vn.motcua.dossier.result_ready.v1
    event_name: str  # dossier.result_ready
    code: str
    area: str
    traceparent: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


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
    procedure_code: str = ""
    received_at: str = ""  # ISO 8601
    due_at: str = ""  # ISO 8601: the appointment
    channels: tuple[str, ...] = ()  # the applicant's choice at submission (empty: every one with an address)


@dataclass(frozen=True)
class DeliverNotification:
    notification_id: str
    code: str = ""
    area: str = ""


@dataclass(frozen=True)
class DeliverySettings:
    schedules: Mapping[str, RetrySchedule]  # channel → retry schedule
    sending_lease: timedelta = timedelta(seconds=60)  # then a "sending" notification is tried again
    tracking_url: str = "https://dichvucong.example.vn/tra-cuu?ma={code}"
    batch: int = 100
    concurrency: int = 8


class Notifier:
    def __init__(self, uows: UnitsOfWork, schemas: Schemas, channels: Mapping[str, Channel], renderer: Renderer,
                 directory: Directory, settings: DeliverySettings, policy: NotifyPolicy | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), rng: random.Random | None = None,
                 documents: Callable[[Mapping[str, Any]], bytes] | None = None,
                 observe: AttemptObserver = unobserved):
        self._uows = uows
        self._observe = observe
        # Reads an attached document's bytes by its reference (checked by its SHA-256).
        self._documents = documents
        self._schemas = schemas
        self._channels = dict(channels)
        self._renderer = renderer
        self._directory = directory
        self._settings = settings
        self._policy = policy or NotifyPolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self._pool: ThreadPoolExecutor | None = None

    # -- remembering the applicant ---------------------------------------------------------------

    def remember(self, c: RememberApplicant) -> None:
        self._uows.run(lambda uow: self._remember(uow, c), what=f"remembering the applicant of {c.code}")
        self.notify(c.then)
        waiting = self._uows.store.collection(self._schemas.waiting)
        for notice in waiting.find({"code": c.code}, sort=[("received_at", 1)]):
            self.notify(_notice_command(notice))
            waiting.delete(notice["_id"])

    def _remember(self, uow: UnitOfWork, c: RememberApplicant) -> None:
        if uow.get(self._schemas.recipients, c.code) is not None:
            return  # known from an earlier delivery
        uow.add(self._schemas.recipients, {
            "_id": c.code, "area": c.area, "receiving_unit": c.receiving_unit, "full_name": c.full_name,
            "email": c.email, "phone": c.phone, "procedure_code": c.procedure_code,
            "procedure_name": self._directory.procedure_name(c.procedure_code),
            "unit_name": self._directory.unit_name(c.receiving_unit),
            "received_at": c.received_at, "due_at": c.due_at, "channels": list(c.channels)})
        uow.commit()

    # -- creating notifications --------------------------------------------------------------------

    def notify(self, c: NotifyApplicant) -> None:
        created = self._uows.run(lambda uow: self._notify(uow, c), what=f"notifying the applicant of {c.code}")
        for notification in created:  # stored claimed for this first attempt: nobody else sends them now
            self._attempt(notification)

    def _notify(self, uow: UnitOfWork, c: NotifyApplicant) -> list[dict]:
        """The notifications this event causes, stored ``sending`` (claimed for their first
        attempt, which the caller makes once they are committed); [] when there is none to send."""
        doc = uow.get(self._schemas.recipients, c.code)
        if doc is None:  # dossier.received not seen yet: the notice waits for it
            if uow.get(self._schemas.waiting, c.event_id) is None:
                notice = asdict(c)
                notice["facts"] = dict(c.facts)
                uow.add(self._schemas.waiting, {"_id": c.event_id, "code": c.code, "notice": notice,
                                                "received_at": self._clock()})
                uow.commit(completes_message=True)  # the event's processed record rides with the notice
                log.info("notice waits for the dossier's reception", extra={"cause": c.event_type})
            return []
        procedure = doc.get("procedure_code") or ""
        if not self._policy.notifies(procedure, c.event_name):
            return []
        recipient = Recipient(code=c.code, full_name=doc["full_name"], email=doc.get("email") or "",
                              phone=doc.get("phone") or "")
        now = self._clock()
        wanted = self._policy.channels_for(procedure)
        chosen = doc.get("channels") or []
        if chosen:  # the applicant's choice, within what the procedure's policy allows
            wanted = tuple(ch for ch in wanted if ch in chosen)
        for channel, address in recipient.addresses(wanted):
            if channel not in self._channels:
                continue
            nid = notification_id(c.event_id, channel, address)
            if uow.get(self._schemas.notifications, nid) is not None:
                continue
            rendered = self._renderer.render(c.event_name, channel, self._context(doc, c))
            uow.add(self._schemas.notifications, {
                "_id": nid, "code": c.code, "area": c.area, "receiving_unit": doc.get("receiving_unit") or "",
                "cause_type": c.event_type, "cause_event_id": c.event_id, "channel": channel,
                "address": address, "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
                "attachments": _attachments(channel, c.facts), "status": SENDING, "sending_since": now,
                "attempts": [], "created_at": now, "next_attempt_at": now, "traceparent": c.traceparent or ""})
        # The event needs nothing more once its notifications are stored (sent right after, or by
        # the timer after the lease if this worker dies first): its processed record rides with them.
        return uow.commit(completes_message=True)

    def _attached(self, refs: Iterable[Mapping[str, Any]]) -> tuple[Attachment, ...]:
        """The attached documents' bytes, read now (a document that cannot be read is a failed
        attempt, tried again on the channel's schedule: never an e-mail without its form)."""
        attached = []
        for ref in refs:
            try:
                if self._documents is None:
                    raise LookupError("no document storage is configured for notify")
                data = self._documents(ref)
            except Exception as exc:  # the store's errors vary by backend; each means "not now"
                raise TransientDeliveryError(f"cannot read the attachment {ref.get('name', '')!r}: {exc}") from exc
            attached.append(Attachment(ref.get("name") or "tai-lieu.pdf", ref.get("media_type") or
                                       "application/octet-stream", data))
        return tuple(attached)

    def _context(self, recipient: Mapping[str, Any], c: NotifyApplicant) -> dict[str, Any]:
        return {"full_name": recipient["full_name"], "code": c.code,
                "procedure_name": recipient.get("procedure_name") or "",
                "unit_name": recipient.get("unit_name") or "",
                "received_at": recipient.get("received_at") or "", "due_at": recipient.get("due_at") or "",
                "tracking_url": self._settings.tracking_url.format(code=c.code), **dict(c.facts)}

    # -- delivering --------------------------------------------------------------------------------

    def deliver(self, c: DeliverNotification) -> str:
        """Try notification ``c.notification_id`` now if it is due; what became of it."""
        claimed = self._uows.run(lambda uow: self._claim(uow, c.notification_id),
                                 what=f"claiming notification {c.notification_id}")
        if claimed is None:
            return "not due"
        return self._attempt(claimed)

    def _attempt(self, claimed: dict) -> str:
        """Send a notification this worker claimed (``sending``, as stored) and record the attempt;
        what became of it."""
        started, timer = self._clock(), time.perf_counter()
        try:
            message = OutgoingNotification(notification_id=claimed["_id"], channel=claimed["channel"],
                                           address=claimed["address"], subject=claimed.get("subject") or "",
                                           text=claimed["text"], html=claimed.get("html") or "",
                                           attachments=self._attached(claimed.get("attachments") or ()))
            response = self._channels[message.channel].send(message)
            outcome = ("accepted", response, "")
        except PermanentDeliveryError as exc:
            outcome = ("refused", exc.response, exc.reason)
        except TransientDeliveryError as exc:
            outcome = ("failed", exc.response, exc.reason)
        except Exception as exc:  # noqa: BLE001 - an adapter's surprise counts as a transient failure
            outcome = ("failed", "", f"{type(exc).__name__}: {exc}")
        self._observe(claimed["channel"], outcome[0], time.perf_counter() - timer)
        attempt = {"number": len(claimed.get("attempts") or []) + 1, "started_at": started,
                   "ended_at": self._clock(), "outcome": outcome[0], "response": clip(outcome[1] or "", 300),
                   "error": clip(outcome[2] or "", 300)}
        return self._uows.run(lambda uow: self._record(uow, claimed["_id"], claimed["version"], attempt),
                              what=f"recording an attempt of notification {claimed['_id']}")

    def _claim(self, uow: UnitOfWork, nid: str) -> dict | None:
        doc = uow.get(self._schemas.notifications, nid)
        if doc is None or doc["status"] in (DELIVERED, FAILED):
            return None
        now = self._clock()
        if doc["status"] == SENDING and _aware(doc["sending_since"]) + self._settings.sending_lease > now:
            return None  # another worker is sending it right now
        if doc["status"] == PENDING and doc.get("attempts") and _aware(doc["next_attempt_at"]) > now:
            return None  # a retry is scheduled later
        claimed = {**doc, "status": SENDING, "sending_since": now}
        uow.save(self._schemas.notifications, claimed)
        (stored,) = uow.commit()
        return stored

    def _record(self, uow: UnitOfWork, nid: str, claimed_version: int, attempt: dict) -> str:
        doc = uow.get(self._schemas.notifications, nid)
        if doc is None or doc["status"] in (DELIVERED, FAILED):
            return doc["status"] if doc else "gone"
        attempts = [*(doc.get("attempts") or []), attempt]
        now = self._clock()
        update: dict[str, Any] = {"attempts": attempts, "sending_since": None}
        messages = []
        failures = sum(1 for a in attempts if a["outcome"] == "failed")
        if attempt["outcome"] == "accepted":
            update.update(status=DELIVERED, delivered_at=now)
            messages.append(self._sent_event(doc, attempts, attempt["response"], now))
        elif attempt["outcome"] == "refused":
            update.update(status=FAILED, failed_at=now, failure=attempt["error"])
            messages.append(self._failed_event(doc, attempts, attempt["error"], now, permanent=True))
        else:
            delay = self._schedule(doc["channel"]).next_delay(failures, self._rng)
            if delay is None:
                reason = f"no retry left after {len(attempts)} attempts; last error: {attempt['error']}"
                update.update(status=FAILED, failed_at=now, failure=clip(reason, 300))
                messages.append(self._failed_event(doc, attempts, reason, now, permanent=False))
            else:
                update.update(status=PENDING, next_attempt_at=now + delay)
        uow.save(self._schemas.notifications, {**doc, **update}, messages)
        uow.commit(completes_message=True)  # a notify.deliver's processed record rides with its outcome
        log.info("notification attempt", extra={"channel": doc["channel"], "outcome": attempt["outcome"],
                                                "status": update["status"], "attempt": attempt["number"]})
        return update["status"]

    def _schedule(self, channel: str) -> RetrySchedule:
        return self._settings.schedules.get(channel) or RetrySchedule(())

    def _sent_event(self, doc: Mapping[str, Any], attempts: list, response: str, now: datetime):
        unit = doc.get("receiving_unit") or ""
        return build_event(name="notification.sent", source=SOURCE, subject=doc["code"], area=doc["area"],
                           traceparent=doc.get("traceparent") or None, data=events_pb2.NotificationSent(
                               notification_id=doc["_id"], code=doc["code"], area=doc["area"],
                               receiving_unit=unit, district=unit, cause_type=doc["cause_type"],
                               channel=doc["channel"], sent_at=timestamp(now), attempts=len(attempts),
                               provider_response=clip(response or "", 200)))

    def _failed_event(self, doc: Mapping[str, Any], attempts: list, reason: str, now: datetime, permanent: bool):
        unit = doc.get("receiving_unit") or ""
        return build_event(name="notification.failed", source=SOURCE, subject=doc["code"], area=doc["area"],
                           traceparent=doc.get("traceparent") or None, data=events_pb2.NotificationFailed(
                               notification_id=doc["_id"], code=doc["code"], area=doc["area"],
                               receiving_unit=unit, district=unit, cause_type=doc["cause_type"],
                               channel=doc["channel"], reason=clip(reason, 300), attempts=len(attempts),
                               failed_at=timestamp(now), permanent=permanent))

    # -- the timer ---------------------------------------------------------------------------------

    def due(self) -> list[str]:
        """Ids of the notifications to try now: pending ones whose time has come, and sending ones
        whose lease ran out."""
        now = self._clock()
        notifications = self._uows.store.collection(self._schemas.notifications)
        pending = notifications.find({"status": PENDING, "next_attempt_at": {"$lte": now}},
                                     sort=[("status", 1), ("next_attempt_at", 1)], limit=self._settings.batch)
        stale = notifications.find({"status": SENDING, "sending_since": {"$lte": now - self._settings.sending_lease}},
                                   limit=self._settings.batch)
        return [d["_id"] for d in [*pending, *stale]]

    def release_waiting(self) -> int:
        """Notices still waiting although their dossier's applicant is known: a notice stored while
        a concurrent ``remember`` had already looked for the waiting ones. Notified now."""
        waiting = self._uows.store.collection(self._schemas.waiting)
        recipients = self._uows.store.collection(self._schemas.recipients)
        old = self._clock() - timedelta(seconds=2)
        released = 0
        for notice in waiting.find({"received_at": {"$lte": old}}, sort=[("received_at", 1)],
                                   limit=self._settings.batch):
            if recipients.get(notice["code"]) is not None:
                self.notify(_notice_command(notice))
                waiting.delete(notice["_id"])
                released += 1
        return released

    def deliver_due(self) -> int:
        """Release notices whose applicant became known, then deliver every due notification,
        several at once (a slow provider delays only its own)."""
        self.release_waiting()
        due = self.due()
        if not due:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._settings.concurrency, thread_name_prefix="notify-due")
        results = list(self._pool.map(self._deliver_logged, due))
        return sum(1 for r in results if r in (DELIVERED, FAILED))

    def _deliver_logged(self, nid: str) -> str:
        try:
            return self.deliver(DeliverNotification(notification_id=nid))
        except Exception:  # noqa: BLE001 - one notification's trouble must not stop the round
            log.exception("delivering a due notification failed")
            return "error"


def _notice_command(notice: Mapping[str, Any]) -> NotifyApplicant:
    data = dict(notice["notice"])
    return NotifyApplicant(**{**data, "facts": dict(data.get("facts") or {})})


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _attachments(channel: str, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What an e-mail carries besides its text: the form an event refers to (form 02 of a
    supplement request). An SMS carries the text only."""
    form = facts.get("form")
    return [dict(form)] if channel == EMAIL and form else []
