"""Names of exchanges and queues, as constants, and their declaration.

Work is sharded by **area** (:mod:`motcua.areas`: the district-level unit a dossier's receiving
unit lies in, or the province):

* Work messages travel on the direct exchange ``motcua.work``; the routing key is the name of the
  consuming queue ``<service>.<area>``, so each area has its own queue and workers.
* Public events travel on the topic exchange ``motcua.events`` with routing key
  ``<area>.<event type>`` (e.g. ``bim-son.dossier.received``, also for a dossier received by a
  ward of Bỉm Sơn). A service that reacts to events binds its own ``<service>.<area>`` queue to
  the patterns in :data:`SUBSCRIPTIONS`.
* A failed message is copied to ``<queue>.retry.<n>`` (a queue whose TTL is the n-th retry delay
  and whose dead-letter target is the original queue), and after the last retry to ``<queue>.dlq``,
  the parking queue an operator inspects and replays.
* ``motcua.events.stream`` is a RabbitMQ stream bound to every event: the replay log a subscriber
  reads from an offset or a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kombu import Connection, Exchange, Queue

WORK_EXCHANGE = Exchange("motcua.work", type="direct", durable=True)
EVENTS_EXCHANGE = Exchange("motcua.events", type="topic", durable=True)
EVENT_STREAM = "motcua.events.stream"
EVENT_STREAM_MAX_AGE = "30D"

SERVICES = ("intake", "routing", "signing", "notify", "archive")

# Which public events each service reacts to (routing-key patterns after "<area>.").
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    # routing's progress, for tracking; its supplement requests, which the applicant answers here
    "intake": ("dossier.assigned", "dossier.result_ready", "dossier.returned", "dossier.supplement_requested",
               "dossier.stopped", "dossier.payment_requested", "dossier.payment_recorded"),
    # the applicant's answers to supplement requests and withdrawals, which the desk takes
    "routing": ("dossier.supplemented", "dossier.withdrawn"),
    "signing": (),
    "notify": ("#",),
    # a dossier's life (the PREMIS log of its package, form 01 from intake's worker), then its
    # return (archive it)
    "archive": ("dossier.received", "dossier.form_issued", "dossier.assigned", "dossier.step_completed",
                "dossier.supplemented", "document.signed", "dossier.returned"),
}

# The type of the work, retry and parking queues (the event stream is a stream): "classic" (the
# local default; RabbitMQ 3.10) or "quorum" (replicated on a cluster). Every process sets it once
# at start from MOTCUA_QUEUE_TYPE (use_queue_type), before declaring or publishing: a queue must be
# declared with the same type by everyone, or RabbitMQ refuses (PRECONDITION_FAILED).
QUEUE_TYPES = ("classic", "quorum")
_queue_type = "classic"


def use_queue_type(queue_type: str) -> None:
    global _queue_type
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"queue type must be one of {QUEUE_TYPES}: {queue_type!r}")
    _queue_type = queue_type


def queue_arguments(**arguments: object) -> dict[str, object]:
    """``arguments`` with the queue type (classic queues are declared without one, as before)."""
    return {**arguments, "x-queue-type": _queue_type} if _queue_type != "classic" else dict(arguments)


SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\Z")  # \Z: "$" would accept a trailing newline


def check_area(area: str) -> str:
    if not isinstance(area, str) or not SLUG_RE.match(area):
        raise ValueError(f"area slug must be lowercase words joined by '-': {str(area)[:64]!r}")
    return area


def queue_name(service: str, area: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return f"{service}.{check_area(area)}"


def retry_queue_name(queue: str, attempt: int) -> str:
    return f"{queue}.retry.{attempt}"


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def event_routing_key(area: str, event_name: str) -> str:
    """``bim-son`` + ``dossier.received`` → ``bim-son.dossier.received``."""
    return f"{check_area(area)}.{event_name}"


def work_queue(name: str) -> Queue:
    """The work queue itself, bound to the work exchange under its own name."""
    return Queue(name, exchange=WORK_EXCHANGE, routing_key=name, durable=True, queue_arguments=queue_arguments())


def service_queue(service: str, area: str) -> Queue:
    """A service's queue for one area with its event bindings (kombu declares all of them)."""
    from kombu import binding

    name = queue_name(service, area)
    bindings = [binding(WORK_EXCHANGE, routing_key=name)]
    bindings += [binding(EVENTS_EXCHANGE, routing_key=f"{area}.{pattern}")
                 for pattern in SUBSCRIPTIONS[service]]
    return Queue(name, bindings=bindings, durable=True, queue_arguments=queue_arguments())


def retry_queues(queue: str, delays_ms: Sequence[int]) -> list[Queue]:
    # Dead-lettering to the default exchange with the original queue's name puts the message back
    # at the end of that queue once its delay has passed.
    return [
        Queue(retry_queue_name(queue, n), durable=True, queue_arguments=queue_arguments(**{
            "x-message-ttl": int(delay),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue,
        }))
        for n, delay in enumerate(delays_ms, start=1)
    ]


def parking_queue(queue: str) -> Queue:
    return Queue(dlq_name(queue), durable=True, queue_arguments=queue_arguments())


def event_stream() -> Queue:
    return Queue(EVENT_STREAM, exchange=EVENTS_EXCHANGE, routing_key="#", durable=True,
                 queue_arguments={"x-queue-type": "stream", "x-max-age": EVENT_STREAM_MAX_AGE})


def declare(connection: Connection, services: Iterable[str], areas: Iterable[str],
            delays_ms: Sequence[int], with_stream: bool = True) -> list[str]:
    """Declare exchanges, the service queues of these areas with their retry and parking
    queues, and the event stream. Idempotent; returns the names of the queues declared."""
    declared: list[str] = []
    channel = connection.default_channel
    WORK_EXCHANGE(channel).declare()
    EVENTS_EXCHANGE(channel).declare()
    for service in services:
        for area in areas:
            main = service_queue(service, area)
            for queue in [main, *retry_queues(main.name, delays_ms), parking_queue(main.name)]:
                queue(channel).declare()
                declared.append(queue.name)
    if with_stream:
        event_stream()(channel).declare()
        declared.append(EVENT_STREAM)
    return declared
