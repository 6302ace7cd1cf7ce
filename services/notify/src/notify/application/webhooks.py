"""Webhooks for subscribing systems (Standard Webhooks, CloudEvents JSON bodies).

* The api's use cases: create, list, get, update, delete a subscription, rotate its secret, send
  it a test event, list its deliveries, and redeliver since a time (read from the event stream).
  An owner (the caller's agency) sees only its own subscriptions.
* :meth:`Webhooks.fan_out` — every public event notify's worker takes: one delivery per matching
  enabled subscription, keyed by (event, subscription), stored ``pending`` with its body.
* :meth:`Webhooks.deliver_due` — the worker's timer: due deliveries grouped by subscription, each
  subscription's lane on a thread of its own (in order, stopping at its first failure), so a slow
  or dead endpoint delays no one else. A failure schedules the next attempt on the retry schedule
  (Standard Webhooks': 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a subscription failing longer
  than ``disable_after`` is disabled with a note and a ``webhook.endpoint_disabled`` event, and
  its pending deliveries fail. ``webhook-id`` is the event's id in every attempt: receivers
  deduplicate on it (at least once).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from motcua.events.v1 import events_pb2
from motcua.logs import clip
from motcua.messaging.envelope import CloudEvent, build_event, new_id
from motcua.protobufs import timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork
from notify.application.ports import AttemptObserver, unobserved
from notify.domain.delivery import DeliveryError
from notify.domain.notifications import DELIVERED, FAILED, PENDING, SENDING, RetrySchedule
from notify.domain.webhooks import (
    DISABLED,
    ENABLED,
    InvalidSubscription,
    check_filters,
    delivery_id,
    matches,
    new_secret,
    subscription_id,
)

log = logging.getLogger(__name__)
SOURCE = "/motcua/notify"
TEST_EVENT_TYPE = "vn.motcua.webhook.test.v1"


class WebhookSender(Protocol):
    def send(self, url: str, message_id: str, body: str, secrets: list[str]) -> str:
        """POST ``body`` signed with each of ``secrets``; the answer when it was 2xx, else
        raises :class:`~notify.domain.delivery.DeliveryError`."""


class UrlCheck(Protocol):
    def check(self, url: str) -> None:
        """Raise InvalidSubscription when ``url`` may not receive webhooks."""


class EventHistory(Protocol):
    def since(self, moment: datetime) -> Iterable[CloudEvent]:
        """Every public event published from ``moment`` on (the event stream)."""


@dataclass(frozen=True)
class WebhookSchemas:
    subscriptions: type
    deliveries: type


@dataclass(frozen=True)
class WebhookSettings:
    schedule: RetrySchedule = RetrySchedule((5, 300, 1800, 7200, 18000, 36000, 36000))
    disable_after: timedelta = timedelta(days=5)
    previous_secret_valid: timedelta = timedelta(days=1)
    sending_lease: timedelta = timedelta(seconds=120)
    batch: int = 500
    lanes: int = 16


@dataclass(frozen=True)
class PublicEventArrived:
    """Any public event notify's worker took (for the webhooks), with what it means for the
    applicant (a RememberApplicant or NotifyApplicant, or None)."""

    event: CloudEvent
    applicant: Any = None


class Webhooks:
    def __init__(self, uows: UnitsOfWork, schemas: WebhookSchemas, sender: WebhookSender, urls: UrlCheck,
                 document: Callable[[CloudEvent], str], settings: WebhookSettings,
                 history: EventHistory | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rng: random.Random | None = None, observe: AttemptObserver = unobserved):
        self._uows = uows
        self._observe = observe
        self._schemas = schemas
        self._sender = sender
        self._urls = urls
        self._document = document
        self._settings = settings
        self._history = history
        self._clock = clock
        self._rng = rng or random.Random()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.RLock()  # a lane done before its callback is added frees itself at once
        self._busy: set[str] = set()  # subscriptions whose lane runs now

    @property
    def _subscriptions(self):
        return self._uows.store.collection(self._schemas.subscriptions)

    @property
    def _deliveries(self):
        return self._uows.store.collection(self._schemas.deliveries)

    # -- the subscription API ------------------------------------------------------------------

    def create(self, owner: str, request_id: str, url: str, event_types: list[str], areas: list[str],
               description: str = "") -> tuple[dict, str]:
        if not request_id:
            raise InvalidArgument("request_id", "required (a retried request returns the first answer)")
        self._check(url, event_types, areas)
        sid = subscription_id(owner, request_id)
        wanted = {"url": url, "event_types": list(event_types), "areas": list(areas), "description": description}

        def create(uow: UnitOfWork) -> dict:
            existing = uow.get(self._schemas.subscriptions, sid)
            if existing is not None:
                if {k: existing[k] for k in wanted} != wanted:
                    raise AlreadyExists("request_id", "was used for another subscription")
                return existing
            now = self._clock()
            uow.add(self._schemas.subscriptions, {
                "_id": sid, "owner": owner, **wanted, "status": ENABLED, "note": "", "secret": new_secret(),
                "previous_secret": "", "created_at": now, "updated_at": now})
            (stored,) = uow.commit()
            return stored
        stored = self._uows.run(create, what="creating a subscription")
        return stored, stored["secret"]

    def list(self, owner: str) -> list[dict]:
        return self._subscriptions.find({"owner": owner}, sort=[("owner", 1), ("created_at", 1)])

    def get(self, owner: str, sid: str) -> dict:
        doc = self._subscriptions.get(sid) if sid else None
        if doc is None or doc["owner"] != owner:
            raise NotFound(f"no subscription {clip(sid, 64)!r}")
        return doc

    def update(self, owner: str, sid: str, url: str = "", event_types: list[str] | None = None,
               areas: list[str] | None = None, description: str = "", enable: bool = False) -> dict:
        current = self.get(owner, sid)
        change = {"url": url or current["url"], "event_types": list(event_types or current["event_types"]),
                  "areas": list(areas or current["areas"]),
                  "description": description or current.get("description") or ""}
        self._check(change["url"], change["event_types"], change["areas"])

        def update(uow: UnitOfWork) -> dict:
            doc = self.get(owner, sid)
            doc = {**doc, **change, "updated_at": self._clock()}
            if enable:
                doc.update(status=ENABLED, note="", failing_since=None)
            uow.save(self._schemas.subscriptions, doc)
            (stored,) = uow.commit()
            return stored
        return self._uows.run(update, what=f"updating subscription {sid}")

    def delete(self, owner: str, sid: str) -> None:
        self.get(owner, sid)
        self._subscriptions.delete(sid)  # its pending deliveries fail when their turn comes

    def rotate(self, owner: str, sid: str) -> tuple[str, datetime]:
        until = self._clock() + self._settings.previous_secret_valid

        def rotate(uow: UnitOfWork) -> str:
            doc = self.get(owner, sid)
            secret = new_secret()
            uow.save(self._schemas.subscriptions, {**doc, "secret": secret, "previous_secret": doc["secret"],
                                                    "previous_valid_until": until, "updated_at": self._clock()})
            uow.commit()
            return secret
        return self._uows.run(rotate, what=f"rotating the secret of {sid}"), until

    def send_test(self, owner: str, sid: str) -> tuple[str, str]:
        doc = self.get(owner, sid)
        if doc["status"] != ENABLED:
            raise FailedPrecondition("subscription is disabled; enable it first (UpdateSubscription enable)")
        now = self._clock()
        event = CloudEvent(id=new_id(), source=SOURCE, type=TEST_EVENT_TYPE, subject=sid, time=now,
                           area="test", data=events_pb2.WebhookTest(subscription_id=sid, sent_at=timestamp(now))
                           .SerializeToString(), dataschema="type.googleapis.com/motcua.events.v1.WebhookTest",
                           traceparent="")
        did = delivery_id(event.id, sid)
        self._uows.run(lambda uow: self._add_delivery(uow, did, sid, event), what="queueing a test event")
        return did, event.id

    def deliveries(self, owner: str, sid: str, page_size: int = 50) -> list[dict]:
        self.get(owner, sid)
        size = 50 if page_size <= 0 else min(page_size, 500)
        return self._deliveries.find({"subscription_id": sid}, sort=[("subscription_id", 1), ("created_at", -1)],
                                     limit=size)

    def redeliver_since(self, owner: str, sid: str, since: datetime) -> int:
        doc = self.get(owner, sid)
        if self._history is None:
            raise FailedPrecondition("this process cannot read the event stream")
        if since > self._clock():
            raise InvalidArgument("since", "is in the future")
        round_ = new_id()
        queued = 0
        for event in self._history.since(since):
            if not matches(doc["event_types"], doc["areas"], event.name, event.area):
                continue
            did = delivery_id(event.id, sid, round_)
            self._uows.run(lambda uow, e=event, d=did: self._add_delivery(uow, d, sid, e),
                           what="queueing a redelivery")
            queued += 1
        return queued

    def _check(self, url: str, event_types: list[str], areas: list[str]) -> None:
        try:
            check_filters(list(event_types), list(areas))
            self._urls.check(url)
        except InvalidSubscription as exc:
            raise InvalidArgument(exc.field, exc.reason) from exc

    # -- fan-out (the worker) ------------------------------------------------------------------

    def fan_out(self, event: CloudEvent) -> int:
        wanted = [s for s in self._subscriptions.find({}) if s["status"] == ENABLED
                  and matches(s["event_types"], s["areas"], event.name, event.area)]
        for sub in wanted:
            did = delivery_id(event.id, sub["_id"])
            self._uows.run(lambda uow, d=did, s=sub["_id"]: self._add_delivery(uow, d, s, event),
                           what="queueing a webhook delivery")
        return len(wanted)

    def _add_delivery(self, uow: UnitOfWork, did: str, sid: str, event: CloudEvent) -> None:
        if uow.get(self._schemas.deliveries, did) is not None:
            return
        now = self._clock()
        uow.add(self._schemas.deliveries, {
            "_id": did, "subscription_id": sid, "event_id": event.id, "event_type": event.type, "area": event.area,
            "body": self._document(event), "status": PENDING, "attempts": [], "created_at": now,
            "next_attempt_at": now})
        uow.commit()

    # -- delivering (the worker's timer) -------------------------------------------------------

    def deliver_due(self, wait: bool = False) -> int:
        """Start a lane for each subscription that has due deliveries and no lane running; the
        round does not wait for the lanes (``wait`` does, for tests), so a lane stuck on a dead
        endpoint's timeout never holds the next round, nor any other subscription. Returns the
        number of lanes started."""
        now = self._clock()
        due = self._deliveries.find({"status": PENDING, "next_attempt_at": {"$lte": now}},
                                    sort=[("status", 1), ("next_attempt_at", 1)], limit=self._settings.batch)
        due += self._deliveries.find({"status": SENDING,
                                      "sending_since": {"$lte": now - self._settings.sending_lease}},
                                     limit=self._settings.batch)
        lanes: OrderedDict[str, list[dict]] = OrderedDict()
        for delivery in due:
            lanes.setdefault(delivery["subscription_id"], []).append(delivery)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._settings.lanes, thread_name_prefix="webhook-lane")
        started = []
        with self._lock:
            for sid, deliveries in lanes.items():
                if sid in self._busy:
                    continue
                self._busy.add(sid)
                future = self._pool.submit(self._lane, deliveries)
                future.add_done_callback(lambda _, s=sid: self._free(s))
                started.append(future)
        if wait:
            for future in started:
                future.result()
        return len(started)

    def _free(self, sid: str) -> None:
        with self._lock:
            self._busy.discard(sid)

    def _lane(self, deliveries: list[dict]) -> int:
        done = 0
        for delivery in sorted(deliveries, key=lambda d: d["created_at"]):
            try:
                outcome = self.deliver(delivery["_id"])
            except Exception:  # noqa: BLE001 - one delivery's trouble must not stop the others
                log.exception("webhook delivery failed unexpectedly")
                return done
            if outcome == DELIVERED:
                done += 1
            elif outcome == PENDING:
                return done  # the endpoint fails now: the rest of its lane waits for its next round
        return done

    def deliver(self, did: str) -> str:
        claimed = self._uows.run(lambda uow: self._claim(uow, did), what=f"claiming webhook delivery {did}")
        if claimed is None:
            return "not due"
        delivery, sub = claimed
        if sub is None or sub["status"] != ENABLED:
            reason = "subscription deleted" if sub is None else f"endpoint disabled: {sub.get('note') or ''}"
            return self._uows.run(lambda uow: self._finish(uow, did, None, reason), what="failing a delivery")
        now = self._clock()
        secrets = [sub["secret"]]
        until = sub.get("previous_valid_until")
        if sub.get("previous_secret") and until is not None and _aware(until) > now:
            secrets.append(sub["previous_secret"])
        started, timer = now, time.perf_counter()
        try:
            response, outcome, error = self._sender.send(sub["url"], delivery["event_id"], delivery["body"],
                                                         secrets), "accepted", ""
        except DeliveryError as exc:
            response, outcome, error = exc.response, "failed", exc.reason
        except Exception as exc:  # noqa: BLE001 - a surprise of the adapter is a failed attempt
            response, outcome, error = "", "failed", f"{type(exc).__name__}: {exc}"
        self._observe("webhook", outcome, time.perf_counter() - timer)
        attempt = {"number": len(delivery.get("attempts") or []) + 1, "started_at": started,
                   "ended_at": self._clock(), "outcome": outcome, "response": clip(response or "", 300),
                   "error": clip(error, 300)}
        status = self._uows.run(lambda uow: self._finish(uow, did, attempt, ""), what="recording a webhook attempt")
        self._uows.run(lambda uow: self._endpoint_health(uow, sub["_id"], attempt, delivery),
                       what="recording an endpoint's health")
        return status

    def _claim(self, uow: UnitOfWork, did: str) -> tuple[dict, dict | None] | None:
        doc = uow.get(self._schemas.deliveries, did)
        if doc is None or doc["status"] in (DELIVERED, FAILED):
            return None
        now = self._clock()
        if doc["status"] == SENDING and _aware(doc.get("sending_since")) + self._settings.sending_lease > now:
            return None
        if doc["status"] == PENDING and _aware(doc.get("next_attempt_at")) > now:
            return None
        uow.save(self._schemas.deliveries, {**doc, "status": SENDING, "sending_since": now})
        (stored,) = uow.commit()
        return stored, uow.get(self._schemas.subscriptions, doc["subscription_id"])

    def _finish(self, uow: UnitOfWork, did: str, attempt: dict | None, reason: str) -> str:
        doc = uow.get(self._schemas.deliveries, did)
        if doc is None or doc["status"] in (DELIVERED, FAILED):
            return doc["status"] if doc else "gone"
        attempts = list(doc.get("attempts") or []) + ([attempt] if attempt else [])
        update: dict[str, Any] = {"attempts": attempts, "sending_since": None}
        if attempt is None:
            update.update(status=FAILED, failure=reason)
        elif attempt["outcome"] == "accepted":
            update.update(status=DELIVERED, delivered_at=self._clock())
        else:
            delay = self._settings.schedule.next_delay(len(attempts), self._rng)
            if delay is None:
                update.update(status=FAILED, failure=f"no retry left after {len(attempts)} attempts")
            else:
                update.update(status=PENDING, next_attempt_at=self._clock() + delay)
        uow.save(self._schemas.deliveries, {**doc, **update})
        uow.commit()
        return update["status"]

    def _endpoint_health(self, uow: UnitOfWork, sid: str, attempt: dict, delivery: Mapping[str, Any]) -> None:
        sub = uow.get(self._schemas.subscriptions, sid)
        if sub is None or sub["status"] != ENABLED:
            return
        now = self._clock()
        if attempt["outcome"] == "accepted":
            if sub.get("failing_since") is not None:
                uow.save(self._schemas.subscriptions, {**sub, "failing_since": None})
                uow.commit()
            return
        since = sub.get("failing_since")
        if since is None:
            uow.save(self._schemas.subscriptions, {**sub, "failing_since": now})
            uow.commit()
            return
        if now - _aware(since) < self._settings.disable_after:
            return
        note = (f"disabled {now.isoformat(timespec='seconds')}: failing since "
                f"{_aware(since).isoformat(timespec='seconds')}; last error: {attempt['error']}")
        area = delivery.get("area") or "test"
        event = build_event(name="webhook.endpoint_disabled", source=SOURCE, subject=sid,
                            area=area if area != "test" else "webhooks",
                            data=events_pb2.WebhookEndpointDisabled(
                                subscription_id=sid, url=sub["url"], failing_since=timestamp(_aware(since)),
                                disabled_at=timestamp(now), reason=clip(note, 300), owner=sub["owner"],
                                area=area))
        uow.save(self._schemas.subscriptions, {**sub, "status": DISABLED, "note": clip(note, 500)}, [event])
        uow.commit()
        log.warning("webhook endpoint disabled", extra={"subscription": sid})


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
