"""Idempotent consumption with retry and parking, independent of the consumer framework.

For each delivery: first *admit* it — a delivery whose id, ``motcua-attempt`` header, content
type or body motcua cannot use is parked at once with the reasons (:meth:`Delivery.problems`),
without reaching the handler; then skip it if this consumer already processed its id (a record
under a unique index); otherwise run the handler, whose effects are themselves keyed by natural
unique keys and whose messages leave through the outbox; then record the id.

Where the record is written (the inbox in the handler's unit of work, as in cosmicpython): while
the handler runs, the record waits as the delivery's :class:`Receipt`. A use case whose write
completes the message commits with ``completes_message=True``
(:meth:`motcua.unit_of_work.UnitOfWork.commit`): the record is stored with that write, in the same
transaction (SQLite: one commit, one fsync; both or neither). A handler that committed no such
write gets the record in a commit of its own afterwards, as before; a handler that answers
:data:`NOTHING_TO_REMEMBER` gets none, since handling it again does nothing either: it took
nothing from the message (an event its service does not take, or one nobody it serves wants), or
its write keeps the message's id itself and a redelivery finds it there (archive's life record,
which lists each event's id). So:
a duplicate delivered after the commit finds the record and is skipped; a crash between the
commit and the acknowledgement redelivers the message, which finds the record; a handler that
raises before its completing commit leaves no record and is tried again. A write may complete the
message only if nothing the handler does after it must be done again when it fails (what follows
is tried by a timer or is keyed and re-done by the next event), since a redelivery skips it.

A failing handler's
message is copied to the queue's next retry queue (or, after the last retry, to its ``.dlq``) with
publisher confirms before the original is acknowledged: nothing is dropped, nothing is redelivered
forever. A store that cannot be read or written counts as a failure like the handler's.

Whatever a message carries, reading it never raises: every header and property is read
defensively, and what a log line or the ``motcua-last-error`` header quotes from it is clipped.
:meth:`MessageHandling.run` raises only when the message could be set aside neither (the broker
refuses the copy); the consumer then asks a :class:`RedeliveryGuard` what to do — park it through
a path of its own if it has failed before, else requeue it after a growing pause.

Why an unusable ``motcua-attempt`` header parks the message rather than counting as 0: only
motcua writes that header (when it sets a message aside), always as a small int. Any other value
means the message did not come from our retry path or was altered on the way, and its retry
budget is unknown: counting it as 0 would silently grant a fresh budget to whatever carries a
forged header, and reading -10 or 2**63-1 literally gives 10 extra tries or none. Parking shows it
to an operator, and ``python -m motcua.operate dlq-replay`` strips the header, so a replay gives
the message a fresh, known budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mongoengine import DateTimeField, Document, IntField, StringField

from motcua import metrics, tracing
from motcua.logs import bind, clip, quote
from motcua.messaging import topology
from motcua.messaging.envelope import (
    ATTEMPT_HEADER,
    JSON,
    PROTOBUF,
    OutgoingMessage,
    checked_message_id,
    trace_id,
    traceparent_of,
)
from motcua.messaging.publisher import Publisher
from motcua.store.port import Collection, DuplicateKey

log = logging.getLogger(__name__)

MAX_ATTEMPT = 100  # a sane motcua-attempt is an int in 0..MAX_ATTEMPT (see the module's docstring)
LAST_ERROR_LIMIT = 500  # characters of the reason kept in a set-aside copy's motcua-last-error
OCTET_STREAM = "application/octet-stream"
# What a motcua consumer takes; kombu used to enforce this list (and drop what failed it), now
# the admission does, and parks the rest.
ACCEPTED_CONTENT_TYPES = (JSON, PROTOBUF, OCTET_STREAM)
LAST_ERROR_HEADER = "motcua-last-error"
FAILED_AT_HEADER = "motcua-failed-at"
ORIGIN_QUEUE_HEADER = "motcua-origin-queue"
PARKED_BY_HEADER = "motcua-parked-by"
DROPPED_HEADERS_HEADER = "motcua-dropped-headers"


# What a handler answers when it took nothing from a message (see the module's docstring).
NOTHING_TO_REMEMBER = object()


class PermanentFailure(Exception):
    """A message that can never succeed (malformed, unknown type): parked at once, not retried."""


@dataclass(frozen=True)
class Delivery:
    """One message as a consumer received it: the body as the bytes that were sent, the headers
    and content type as the AMQP client decoded them (any types: bytes, ints, nested tables)."""

    body: bytes
    headers: Mapping[Any, Any]
    content_type: str | None
    queue: str
    routing_key: str = ""
    redelivered: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The message's id if it is usable (text, UTF-8, at most 255 bytes), else ""."""
        return checked_message_id(self.headers)[0]

    @property
    def id_problem(self) -> str | None:
        return checked_message_id(self.headers)[1]

    @property
    def attempt(self) -> int:
        """How many times the message was tried and set aside (its ``motcua-attempt``); 0 when
        it has none or an unusable one (which :meth:`problems` reports)."""
        value = self._header(ATTEMPT_HEADER)
        return value if _is_sane_attempt(value) else 0

    @property
    def attempt_problem(self) -> str | None:
        value = self._header(ATTEMPT_HEADER)
        if value is None or _is_sane_attempt(value):
            return None
        return f"{ATTEMPT_HEADER} header is not an integer from 0 to {MAX_ATTEMPT}: {quote(value, 60)}"

    @property
    def traceparent(self) -> str | None:
        """The message's W3C traceparent if it carries a valid one."""
        return traceparent_of(self.headers)

    def problems(self) -> list[str]:
        """Why motcua cannot take this delivery at all ([] when it can): an unusable id or
        attempt header, a compressed body, a content type motcua does not accept, or a JSON
        body that does not decode. Checked before the handler runs; never raises."""
        found = [problem for problem in (self.id_problem, self.attempt_problem) if problem]
        compression = self._header("compression")
        if compression is not None:
            # kombu's own convention (motcua never compresses): kombu may have inflated the body.
            found.append(f"compressed messages are not accepted (compression: {quote(compression, 60)})")
        media_type = _media_type(self.content_type)
        if self.content_type is not None and media_type not in ACCEPTED_CONTENT_TYPES:
            found.append(f"content type {quote(self.content_type, 80)} is not one motcua accepts "
                         f"({', '.join(ACCEPTED_CONTENT_TYPES)})")
        elif media_type == JSON:
            found.extend(_json_problem(self.body))
        return found

    def fingerprint(self) -> str:
        """The same for every delivery of one message (body, headers, queue); for counting
        failures of messages that have no usable id."""
        digest = hashlib.sha256(self.queue.encode("utf-8", "backslashreplace"))
        digest.update(_as_bytes(self.body))
        for key, value in sorted((repr(k), repr(v)) for k, v in self._headers().items()):
            digest.update(key.encode("utf-8", "backslashreplace"))
            digest.update(value.encode("utf-8", "backslashreplace"))
        return digest.hexdigest()

    def _headers(self) -> Mapping[Any, Any]:
        return self.headers if isinstance(self.headers, Mapping) else {}

    def _header(self, name: str) -> Any:
        return self._headers().get(name)


def _is_sane_attempt(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ATTEMPT


def _media_type(content_type: Any) -> str | None:
    if not isinstance(content_type, str):
        return None
    return content_type.split(";", 1)[0].strip().lower()


def _json_problem(body: Any) -> list[str]:
    try:
        json.loads(_as_bytes(body).decode("utf-8"))
    except UnicodeDecodeError as exc:
        return [f"body is not UTF-8, as JSON must be: {clip(str(exc), 120)}"]
    except (ValueError, RecursionError) as exc:
        return [f"body is not JSON: {clip(str(exc), 120)}"]
    return []


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape")
    return b"" if body is None else repr(body).encode()


def _describe(exc: BaseException) -> str:
    return clip("".join(traceback.format_exception_only(exc)).strip(), LAST_ERROR_LIMIT)


class ProcessedMessage(Document):
    """A message id a consumer has fully processed (``_id`` = ``<consumer>:<message id>``)."""

    meta = {"collection": "processed_messages", "indexes": ["processed_at"]}

    id = StringField(primary_key=True)
    version = IntField()
    consumer = StringField(required=True)
    message_id = StringField(required=True)
    processed_at = DateTimeField(required=True)


class Receipt:
    """The processed-message record of the delivery being handled, until it is written: by the
    write that completes the message (:meth:`motcua.unit_of_work.UnitOfWork.commit`), or after
    the handler. Its collection is in the store the handler's units of work write to (as
    :class:`motcua.runtime.Infrastructure` wires them), which is what lets the two share a
    transaction."""

    def __init__(self, processed: Collection, consumer: str, message_id: str):
        self._processed = processed
        self._consumer = consumer
        self._message_id = message_id
        self.written = False

    @property
    def key(self) -> str:
        return f"{self._consumer}:{self._message_id}"

    def write(self) -> None:
        """Insert the record (inside the caller's ``store.together()`` block when it rides with a
        write, whose caller sets :attr:`written` once the block is committed)."""
        # A concurrent redelivery may get there first; the effects are keyed, so no harm.
        with contextlib.suppress(DuplicateKey):
            self._processed.insert({"_id": self.key, "consumer": self._consumer, "message_id": self._message_id,
                                    "processed_at": datetime.now(UTC)})


# The receipt of the delivery this thread (or green thread) is handling; None outside a handler.
_RECEIPT: ContextVar[Receipt | None] = ContextVar("motcua_receipt", default=None)


def current_receipt() -> Receipt | None:
    """The receipt of the delivery being handled here, if its record is not written yet."""
    receipt = _RECEIPT.get()
    return receipt if receipt is not None and not receipt.written else None


class MessageHandling:
    def __init__(self, consumer: str, processed: Collection, publisher: Publisher,
                 retry_delays_ms: Sequence[int]):
        self._consumer = consumer
        self._processed = processed
        self._publisher = publisher
        self._delays = list(retry_delays_ms)

    def run(self, delivery: Delivery, handler: Callable[[Delivery], object]) -> str:
        """Process one delivery; returns what happened: processed, duplicate, retried or parked.
        Raises only if the message could be neither processed nor set aside (the caller then
        requeues it, or parks it through a :class:`RedeliveryGuard`). Counted in motcua.metrics."""
        started = time.perf_counter()
        outcome = "unsettled"
        attributes = {"messaging.destination.name": delivery.queue, "messaging.message.id": delivery.id}
        with tracing.span(f"{delivery.queue} process", "consumer", delivery.traceparent, attributes) as span:
            try:
                outcome = self._run(delivery, handler)
                return outcome
            finally:
                metrics.message_handled(delivery.queue, outcome, time.perf_counter() - started)
                tracing.set_attribute(span, "motcua.outcome", outcome)

    def _run(self, delivery: Delivery, handler: Callable[[Delivery], object]) -> str:
        mid = delivery.id
        with bind(event_id=mid, trace_id=trace_id(delivery.traceparent)):
            problems = delivery.problems()
            if problems:
                return self._set_aside(delivery, "; ".join(problems), park=True)
            receipt = Receipt(self._processed, self._consumer, mid)
            try:
                seen = self._processed.get(receipt.key) is not None
            except Exception as exc:  # noqa: BLE001 - a store outage is retried like a handler's failure
                return self._failed(delivery, f"could not look up processed messages: {_describe(exc)}")
            if seen:
                log.info("duplicate delivery ignored", extra={"queue": delivery.queue})
                return "duplicate"
            token = _RECEIPT.set(receipt)
            try:
                answer = handler(delivery)
            except PermanentFailure as exc:
                return self._set_aside(delivery, f"{type(exc).__name__}: {exc}", park=True)
            except Exception as exc:  # noqa: BLE001 - every other failure is retried, then parked
                return self._failed(delivery, _describe(exc), exc_info=True)
            finally:
                _RECEIPT.reset(token)
            if receipt.written or answer is NOTHING_TO_REMEMBER:
                return "processed"
            try:
                receipt.write()  # the handler committed nothing that completes the message
            except Exception as exc:  # noqa: BLE001 - handled but not recorded: do it again later
                # (the handler's effects are keyed, so running it again changes nothing)
                return self._failed(delivery, f"handled, but could not record it: {_describe(exc)}")
            return "processed"

    def _failed(self, delivery: Delivery, reason: str, exc_info: bool = False) -> str:
        log.warning("handling failed", extra={"queue": delivery.queue, "attempt": delivery.attempt,
                                              "reason": clip(reason)}, exc_info=exc_info)
        return self._set_aside(delivery, reason, park=delivery.attempt >= len(self._delays))

    def _set_aside(self, delivery: Delivery, reason: str, park: bool) -> str:
        attempt = delivery.attempt + 1
        queue = (topology.parking_queue(delivery.queue) if park
                 else topology.retry_queues(delivery.queue, self._delays)[attempt - 1])
        headers = {**delivery._headers(), **_reason_headers(delivery, attempt, reason)}
        self._publisher.publish(_copy(delivery, queue.name, headers), declare_queue=queue)
        (log.error if park else log.warning)(
            "message parked" if park else "message scheduled for retry",
            extra={"queue": delivery.queue, "target": queue.name, "reason": clip(reason)})
        return "parked" if park else "retried"


class RedeliveryGuard:
    """What a consumer does with a delivery whose handling raised — the message could be neither
    processed nor set aside (the broker refused the copy, or something failed before
    :class:`MessageHandling` could set it aside) — so that it never loops at full speed:

    * a delivery that failed before (the broker's redelivered flag, or a failure this guard has
      seen) is parked in its ``.dlq`` by the guard itself, through a publisher of its own, with
      only the headers that travel safely: :meth:`failed` returns None, acknowledge it then;
    * otherwise, or if that parking fails too, :meth:`failed` returns how long to wait before
      requeueing it: ``base_delay_s``, doubled at each failure the guard has seen of that
      message, up to ``max_delay_s``.

    Classic queues count no deliveries (only quorum queues have ``x-delivery-limit``), so the
    guard counts failures itself, per message fingerprint, for the last ``remembered`` messages;
    the redelivered flag carries the knowledge across processes.
    """

    def __init__(self, publisher_factory: Callable[[], Publisher], base_delay_s: float = 0.5,
                 max_delay_s: float = 30.0, remembered: int = 4096):
        self._publisher_factory = publisher_factory
        self._publisher: Publisher | None = None
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._remembered = remembered
        self._failures: OrderedDict[str, int] = OrderedDict()

    def failed(self, delivery: Delivery, error: BaseException | str) -> float | None:
        key = delivery.fingerprint()
        failures = self._failures.pop(key, 0) + 1
        self._failures[key] = failures
        while len(self._failures) > self._remembered:
            self._failures.popitem(last=False)
        reason = f"could not be processed or set aside: {error if isinstance(error, str) else _describe(error)}"
        if delivery.redelivered or failures > 1:
            try:
                self._park(delivery, reason)
            except Exception as exc:  # noqa: BLE001 - then wait and requeue: the broker may be away
                log.error("message could not be parked either", extra={
                    "queue": delivery.queue, "failures": failures, "reason": clip(reason),
                    "error": clip(_describe(exc))})
            else:
                self._failures.pop(key, None)
                return None
        delay = min(self.base_delay_s * 2 ** min(failures - 1, 32), self.max_delay_s)
        log.warning("message requeued after a pause", extra={
            "queue": delivery.queue, "failures": failures, "delay_s": delay, "reason": clip(reason)})
        return delay

    def succeeded(self, delivery: Delivery) -> None:
        if self._failures:
            self._failures.pop(delivery.fingerprint(), None)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    def _park(self, delivery: Delivery, reason: str) -> None:
        if self._publisher is None:
            self._publisher = self._publisher_factory()
        queue = topology.parking_queue(delivery.queue)
        headers, dropped = _portable_headers(delivery._headers())
        headers.update(_reason_headers(delivery, delivery.attempt + 1, reason))
        headers[PARKED_BY_HEADER] = "redelivery-guard"
        if dropped:
            headers[DROPPED_HEADERS_HEADER] = clip(", ".join(dropped), LAST_ERROR_LIMIT)
        self._publisher.publish(_copy(delivery, queue.name, headers), declare_queue=queue)
        log.error("message parked by the redelivery guard", extra={
            "queue": delivery.queue, "target": queue.name, "reason": clip(reason)})


def _reason_headers(delivery: Delivery, attempt: int, reason: str) -> dict[str, Any]:
    return {ATTEMPT_HEADER: attempt, LAST_ERROR_HEADER: clip(reason, LAST_ERROR_LIMIT),
            FAILED_AT_HEADER: datetime.now(UTC).isoformat(), ORIGIN_QUEUE_HEADER: delivery.queue}


def _copy(delivery: Delivery, queue: str, headers: Mapping[Any, Any]) -> OutgoingMessage:
    """The copy of a delivery sent to a retry or parking queue: the same body and headers (plus
    ours), its id as message-id property only if usable, a content type only if it is text."""
    content_type = delivery.content_type
    if not isinstance(content_type, str) or not content_type or len(content_type.encode("utf-8", "replace")) > 255:
        content_type = OCTET_STREAM
    return OutgoingMessage(id=delivery.id, exchange="", routing_key=queue, body=_as_bytes(delivery.body),
                           content_type=content_type, headers=headers)


def _portable_headers(headers: Mapping[Any, Any]) -> tuple[dict[str, Any], list[str]]:
    """The headers any AMQP client encodes and decodes faithfully (text keys; short UTF-8 text,
    64-bit ints, booleans), and a clipped list of the keys of the others."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in headers.items():
        portable_key = isinstance(key, str) and len(key.encode("utf-8", "replace")) <= 128
        if portable_key and _portable_value(value):
            kept[key] = value
        else:
            dropped.append(clip(key, 60))
    return kept, dropped


def _portable_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, str):
        try:
            return len(value.encode("utf-8")) <= 1024
        except UnicodeEncodeError:
            return False
    return False
