"""What a worker takes from its queue, turned into the application's messages — the one place a
delivery's envelope is parsed and dispatched.

A service declares which work types and which public events it takes, each with the function that
builds its message (a command or an event of the application) from the parsed envelope; the
worker's runtime then hands every delivery to :meth:`Inbound.dispatch`, which decodes it and passes
the message to the bus. What cannot become a message — a malformed envelope, an unknown work type,
a payload that is not its type's protobuf, a field the builder refuses — and what a handler refuses
for good (invalid, not allowed in the dossier's state, not permitted, a reused id) is a
:class:`~motcua.messaging.consuming.PermanentFailure`: parked with its reason, never retried.
Everything else a handler raises is retried within the queue's budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from motcua.logs import bind, clip
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import NOTHING_TO_REMEMBER, Delivery, PermanentFailure
from motcua.messaging.envelope import CloudEvent, InvalidEnvelope, WorkMessage, is_event, parse_event, parse_work

# Errors that mean the message can never succeed, however often it is tried.
REFUSALS = (InvalidEnvelope, InvalidArgument, FailedPrecondition, PermissionDenied, AlreadyExists)


@dataclass(frozen=True)
class Inbound:
    """``work``: work type → builder of the message from the work message; ``events``: event name
    (``dossier.returned``) → builder from the CloudEvent. Events a service is not bound to are
    ignored (a binding may deliver more than a service takes); unknown work is parked."""

    work: Mapping[str, Callable[[WorkMessage], Any]] = field(default_factory=dict)
    events: Mapping[str, Callable[[CloudEvent], Any]] = field(default_factory=dict)

    def decode(self, delivery: Delivery) -> Any | None:
        """The application's message for ``delivery``; None for an event this service ignores."""
        try:
            if is_event(delivery.headers):
                event = parse_event(delivery.body, delivery.headers, delivery.content_type)
                build = self.events.get(event.name)
                return build(event) if build is not None else None
            work = parse_work(delivery.body, delivery.headers, delivery.queue, delivery.content_type)
            build = self.work.get(work.type)
            if build is None:
                raise PermanentFailure(f"{delivery.queue} takes no work of type {clip(work.type, 64)}")
            return build(work)
        except REFUSALS as exc:
            raise PermanentFailure(f"{type(exc).__name__}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:  # a builder met a payload of another shape
            raise PermanentFailure(f"malformed {type(exc).__name__}: {clip(str(exc))}") from exc

    def dispatch(self, bus: MessageBus) -> Callable[[Delivery], object]:
        """The worker runtime's handler: decode, then hand the message to ``bus``; answers what
        the bus's handler answered (:data:`~motcua.messaging.consuming.NOTHING_TO_REMEMBER` for an
        event this service ignores: its name alone decides that, again at every delivery)."""
        def handle(delivery: Delivery) -> object:
            message = self.decode(delivery)
            if message is None:
                return NOTHING_TO_REMEMBER
            with bind(**_bound(message)):
                try:
                    return bus.handle(message)
                except REFUSALS as exc:
                    raise PermanentFailure(f"{type(exc).__name__}: {exc}") from exc
        return handle


def _bound(message: Any) -> dict[str, str]:
    """The log fields a message names (dossier code, area), when it has them."""
    out = {}
    for field_name, key in (("code", "dossier_code"), ("area", "area")):
        value = getattr(message, field_name, None)
        if isinstance(value, str) and value:
            out[key] = value
    return out
