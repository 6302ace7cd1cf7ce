"""Names of exchanges and queues, as constants, and their declaration.

* Work messages travel on the direct exchange ``motcua.work``; the routing key is the name of the
  consuming queue ``<service>.<district>``, so each district has its own queue and workers.
* Public events travel on the topic exchange ``motcua.events`` with routing key
  ``<district>.<event type>`` (e.g. ``bim-son.dossier.received``). A service that reacts to events
  binds its own ``<service>.<district>`` queue to the patterns in :data:`SUBSCRIPTIONS`.
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

# Which public events each service reacts to (routing-key patterns after "<district>.").
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    # routing's progress, for tracking; its supplement requests, which the applicant answers here
    "intake": ("dossier.assigned", "dossier.result_ready", "dossier.returned", "dossier.supplement_requested",
               "dossier.stopped", "dossier.payment_requested", "dossier.payment_recorded"),
    # the applicant's answers to supplement requests and withdrawals, which the desk takes
    "routing": ("dossier.supplemented", "dossier.withdrawn"),
    "signing": (),
    "notify": ("#",),
    "archive": ("dossier.returned",),
}

DISTRICT_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\Z")  # \Z: "$" would accept a trailing newline


def check_district(district: str) -> str:
    if not DISTRICT_RE.match(district):
        raise ValueError(f"district slug must be lowercase words joined by '-': {district!r}")
    return district


def queue_name(service: str, district: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return f"{service}.{check_district(district)}"


def retry_queue_name(queue: str, attempt: int) -> str:
    return f"{queue}.retry.{attempt}"


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def event_routing_key(district: str, event_name: str) -> str:
    """``bim-son`` + ``dossier.received`` → ``bim-son.dossier.received``."""
    return f"{check_district(district)}.{event_name}"


def work_queue(name: str) -> Queue:
    """The work queue itself, bound to the work exchange under its own name."""
    return Queue(name, exchange=WORK_EXCHANGE, routing_key=name, durable=True)


def service_queue(service: str, district: str) -> Queue:
    """A service's queue for one district with its event bindings (kombu declares all of them)."""
    from kombu import binding

    name = queue_name(service, district)
    bindings = [binding(WORK_EXCHANGE, routing_key=name)]
    bindings += [binding(EVENTS_EXCHANGE, routing_key=f"{district}.{pattern}")
                 for pattern in SUBSCRIPTIONS[service]]
    return Queue(name, bindings=bindings, durable=True)


def retry_queues(queue: str, delays_ms: Sequence[int]) -> list[Queue]:
    # Dead-lettering to the default exchange with the original queue's name puts the message back
    # at the end of that queue once its delay has passed.
    return [
        Queue(retry_queue_name(queue, n), durable=True, queue_arguments={
            "x-message-ttl": int(delay),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue,
        })
        for n, delay in enumerate(delays_ms, start=1)
    ]


def parking_queue(queue: str) -> Queue:
    return Queue(dlq_name(queue), durable=True)


def event_stream() -> Queue:
    return Queue(EVENT_STREAM, exchange=EVENTS_EXCHANGE, routing_key="#", durable=True,
                 queue_arguments={"x-queue-type": "stream", "x-max-age": EVENT_STREAM_MAX_AGE})


def declare(connection: Connection, services: Iterable[str], districts: Iterable[str],
            delays_ms: Sequence[int], with_stream: bool = True) -> list[str]:
    """Declare exchanges, the service queues of these districts with their retry and parking
    queues, and the event stream. Idempotent; returns the names of the queues declared."""
    declared: list[str] = []
    channel = connection.default_channel
    WORK_EXCHANGE(channel).declare()
    EVENTS_EXCHANGE(channel).declare()
    for service in services:
        for district in districts:
            main = service_queue(service, district)
            for queue in [main, *retry_queues(main.name, delays_ms), parking_queue(main.name)]:
                queue(channel).declare()
                declared.append(queue.name)
    if with_stream:
        event_stream()(channel).declare()
        declared.append(EVENT_STREAM)
    return declared
