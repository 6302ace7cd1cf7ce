"""What routing's worker does with the messages on ``routing.<area>``: the work other services
send it and the public events it follows. Each becomes one action on the dossier's instance, by
the service that reported it (never an official), applied once however often it arrives:

* ``routing.route_dossier`` (intake): open the instance;
* ``routing.signing_completed`` (signing): the draft is signed → the sign and seal steps are done,
  the return step is active and the result is ready (status 9);
* ``dossier.supplemented`` (intake's event): the applicant answered → processing resumes, the due
  date moved by the procedure's policy, the new documents join the dossier;
* ``dossier.withdrawn`` (intake's event): the applicant withdrew (status 7).

A report that does not fit the instance's state (a withdrawal after the result was returned) is
parked in the queue's .dlq for an operator, never dropped; a report about an instance not opened
yet is retried (its route_dossier message may still be on its way).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from motcua.events.v1 import events_pb2
from motcua.logs import bind
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import InvalidEnvelope, is_event, parse_event, parse_work
from motcua.protobufs import document_ref_dict
from routing.application.repository import Instances
from routing.domain.actions import INTAKE, SIGNING, Actor, Command, Signed, SupplementReceived, Withdrawn

log = logging.getLogger(__name__)


class NotOpenYet(Exception):
    """A report about a dossier whose instance is not open yet: retried with backoff."""


class RoutingWork:
    def __init__(self, instances: Instances):
        self._instances = instances

    def dispatch(self, delivery: Delivery) -> None:
        try:
            if is_event(delivery.headers):
                self._follow(delivery)
            else:
                self._work(delivery)
        except (InvalidEnvelope, InvalidArgument, FailedPrecondition, PermissionDenied, AlreadyExists) as exc:
            raise PermanentFailure(f"{type(exc).__name__}: {exc}") from exc

    def _work(self, delivery: Delivery) -> None:
        work = parse_work(delivery.body, delivery.headers, delivery.queue)
        body = work.body
        with bind(dossier_code=body.get("code"), area=body.get("area")):
            if work.type == "routing.route_dossier":
                self._instances.open(body, work.traceparent)
            elif work.type == "routing.signing_completed":
                signed = Signed(signing_request_id=body.get("signing_request_id", ""),
                                signers=tuple(body.get("signers") or ()), result=dict(body.get("signed") or {}))
                self._report(_text(body, "dossier_id"), signed, SIGNING, work.id, work.traceparent)
            else:
                raise PermanentFailure(f"routing cannot handle work {work.type!r}")

    def _follow(self, delivery: Delivery) -> None:
        event = parse_event(delivery.body, delivery.headers, delivery.content_type)
        with bind(dossier_code=event.subject, area=event.area):
            if event.name == "dossier.supplemented":
                data = event.decode(events_pb2.DossierSupplemented)
                command: Command = SupplementReceived(documents=tuple(document_ref_dict(d) for d in data.documents))
                self._report(data.dossier_id, command, INTAKE, event.id, event.traceparent)
            elif event.name == "dossier.withdrawn":
                data = event.decode(events_pb2.DossierWithdrawn)
                self._report(data.dossier_id, Withdrawn(reason=data.reason), INTAKE, event.id, event.traceparent)
            # other events are not routing's (the bindings should not deliver them)

    def _report(self, dossier_id: str, command: Command, by: Actor, message_id: str, traceparent: str | None) -> None:
        try:
            changed = self._instances.act_as_system(dossier_id, command, by, request_id=f"{by.label}:{message_id}",
                                                    traceparent=traceparent)
        except NotFound as exc:
            raise NotOpenYet(str(exc)) from exc
        if changed:
            log.info("reported", extra={"action": str(command.action), "by": by.label})


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(key, "is required")
    return value
