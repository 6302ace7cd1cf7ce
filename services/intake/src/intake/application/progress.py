"""What intake's worker does with the messages on intake.<area>: issue forms, record routing's
supplement requests, and follow the dossier's progress through routing's public events
(processing, payment, stop, result, return) so that tracking tells the truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intake.application.dossiers import Dossiers
from intake.application.forms import Forms
from intake.domain.catalog import Catalog
from intake.domain.dossier import Status
from motcua.events.v1 import events_pb2
from motcua.logs import bind
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import CloudEvent, InvalidEnvelope, is_event, parse_event, parse_work
from motcua.objects import ObjectStore
from motcua.protobufs import datetime_of
from motcua.store.port import Collection

# routing's event → (the status it means, the action shown to the public)
PROGRESS_EVENTS: dict[str, tuple[Status, str]] = {
    "dossier.assigned": (Status.PROCESSING, "processing"),
    "dossier.result_ready": (Status.RESULT_READY, "result ready"),
    "dossier.returned": (Status.RETURNED, "result returned"),
}
# routing's event → the action shown to the public (the status: intake.domain.lifecycle.MIRRORED_CHANGES)
CHANGE_EVENTS: dict[str, str] = {
    "dossier.stopped": "processing stopped",
    "dossier.payment_requested": "fee or tax payment requested",
    "dossier.payment_recorded": "payment recorded",
}


class Progress:
    def __init__(self, dossiers: Dossiers, records: Collection, objects: ObjectStore, catalog: Catalog,
                 lookup_url: str, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._dossiers = dossiers
        self._forms = Forms(records, objects, catalog, lookup_url, offload)

    def dispatch(self, delivery: Delivery) -> None:
        try:
            if is_event(delivery.headers):
                self._follow(delivery)
            else:
                self._work(delivery)
        except InvalidEnvelope as exc:
            raise PermanentFailure(str(exc)) from exc

    def _follow(self, delivery: Delivery) -> None:
        event = parse_event(delivery.body, delivery.headers, delivery.content_type)
        if event.name == "dossier.supplement_requested":
            self._supplement_requested(event)
            return
        if event.name in CHANGE_EVENTS:
            with bind(dossier_code=event.subject, area=event.area):
                self._dossiers.follow_change(event.subject, event.name, CHANGE_EVENTS[event.name], event.time, event.id)
            return
        if event.name not in PROGRESS_EVENTS:
            return
        status, action = PROGRESS_EVENTS[event.name]
        with bind(dossier_code=event.subject, area=event.area):
            self._dossiers.follow_progress(event.subject, status, action, event.time, event.id)

    def _supplement_requested(self, event: CloudEvent) -> None:
        request = event.decode(events_pb2.SupplementRequested)
        deadline = datetime_of(request.supplement_deadline) if request.HasField("supplement_deadline") else None
        at = datetime_of(request.requested_at) if request.HasField("requested_at") else event.time
        with bind(dossier_code=event.subject, area=event.area):
            self._dossiers.record_supplement_request(event.subject, request.reason, request.requested_by, at,
                                                     deadline, event.id)

    def _work(self, delivery: Delivery) -> None:
        work = parse_work(delivery.body, delivery.headers, delivery.queue)
        if work.type != "intake.render_form" or work.body.get("form") not in ("01", "03"):
            raise PermanentFailure(f"intake cannot handle work {work.type!r} {dict(work.body)!r}")
        self._forms.issue(work.body["dossier_id"], work.body["form"])
