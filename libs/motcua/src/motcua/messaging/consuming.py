"""Idempotent consumption with retry and parking, independent of the consumer framework.

For each delivery: skip it if this consumer already processed its id (a record under a unique
index); otherwise run the handler, whose effects are themselves keyed by natural unique keys and
whose messages leave through the outbox; then record the id. A failing handler's message is
copied to the queue's next retry queue (or, after the last retry, to its ``.dlq``) with publisher
confirms before the original is acknowledged: nothing is dropped, nothing is redelivered forever.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mongoengine import DateTimeField, Document, IntField, StringField

from motcua.logs import bind
from motcua.messaging import topology
from motcua.messaging.envelope import ATTEMPT_HEADER, HEADER_PREFIX, OutgoingMessage, message_id, trace_id
from motcua.messaging.publisher import Publisher
from motcua.store.port import Collection, DuplicateKey

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """A message that can never succeed (malformed, unknown type): parked at once, not retried."""


@dataclass(frozen=True)
class Delivery:
    """One message as a consumer received it."""

    body: bytes
    headers: Mapping[str, Any]
    content_type: str | None
    queue: str
    routing_key: str = ""
    redelivered: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return message_id(self.headers)

    @property
    def attempt(self) -> int:
        return int(self.headers.get(ATTEMPT_HEADER, 0) or 0)


class ProcessedMessage(Document):
    """A message id a consumer has fully processed (``_id`` = ``<consumer>:<message id>``)."""

    meta = {"collection": "processed_messages", "indexes": ["processed_at"]}

    id = StringField(primary_key=True)
    version = IntField()
    consumer = StringField(required=True)
    message_id = StringField(required=True)
    processed_at = DateTimeField(required=True)


class MessageHandling:
    def __init__(self, consumer: str, processed: Collection, publisher: Publisher,
                 retry_delays_ms: Sequence[int]):
        self._consumer = consumer
        self._processed = processed
        self._publisher = publisher
        self._delays = list(retry_delays_ms)

    def run(self, delivery: Delivery, handler: Callable[[Delivery], None]) -> str:
        """Process one delivery; returns what happened: processed, duplicate, retried or parked.
        Raises only if the message could be neither processed nor set aside (the caller then
        requeues it)."""
        mid = delivery.id
        with bind(event_id=mid, trace_id=trace_id(_traceparent(delivery.headers))):
            if not mid:
                self._set_aside(delivery, "message has no id", park=True)
                return "parked"
            key = f"{self._consumer}:{mid}"
            if self._processed.get(key) is not None:
                log.info("duplicate delivery ignored", extra={"queue": delivery.queue})
                return "duplicate"
            try:
                handler(delivery)
            except PermanentFailure as exc:
                return self._set_aside(delivery, f"{type(exc).__name__}: {exc}", park=True)
            except Exception as exc:  # noqa: BLE001 - every other failure is retried, then parked
                log.warning("handler failed", extra={"queue": delivery.queue, "attempt": delivery.attempt},
                            exc_info=True)
                reason = "".join(traceback.format_exception_only(exc)).strip()
                return self._set_aside(delivery, reason, park=delivery.attempt >= len(self._delays))
            self._remember(key, mid)
            return "processed"

    def _remember(self, key: str, mid: str) -> None:
        # A concurrent redelivery may get there first; the effects are keyed, so no harm.
        with contextlib.suppress(DuplicateKey):
            self._processed.insert({"_id": key, "consumer": self._consumer, "message_id": mid,
                                    "processed_at": datetime.now(UTC)})

    def _set_aside(self, delivery: Delivery, reason: str, park: bool) -> str:
        attempt = delivery.attempt + 1
        queue = (topology.parking_queue(delivery.queue) if park
                 else topology.retry_queues(delivery.queue, self._delays)[attempt - 1])
        target = queue.name
        headers = {**delivery.headers, ATTEMPT_HEADER: attempt, "motcua-last-error": reason[:500],
                   "motcua-failed-at": datetime.now(UTC).isoformat(),
                   "motcua-origin-queue": delivery.queue}
        self._publisher.publish(OutgoingMessage(
            id=delivery.id or "", exchange="", routing_key=target, body=delivery.body,
            content_type=delivery.content_type or "application/octet-stream", headers=headers),
            declare_queue=queue)
        (log.error if park else log.warning)(
            "message parked" if park else "message scheduled for retry",
            extra={"queue": delivery.queue, "target": target, "reason": reason[:200]})
        return "parked" if park else "retried"


def _traceparent(headers: Mapping[str, Any]) -> str | None:
    value = headers.get(f"{HEADER_PREFIX}traceparent") or headers.get("traceparent")
    return value.decode() if isinstance(value, bytes) else value
