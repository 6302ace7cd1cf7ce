"""Idempotent consumption with retry and parking, on a real RabbitMQ (a private vhost), a real
Publisher and a real processed-message collection (SQLite and MongoDB through mongomock)."""

from __future__ import annotations

import time
import uuid

import pika
import pytest
from kombu import Connection
from mongoengine import StringField
from motcua_dev import infra
from prometheus_client import REGISTRY

from motcua.events.v1 import events_pb2
from motcua.messaging import topology
from motcua.messaging.consuming import (
    NOTHING_TO_REMEMBER,
    Delivery,
    MessageHandling,
    PermanentFailure,
    ProcessedMessage,
    RedeliveryGuard,
)
from motcua.messaging.envelope import (
    ATTEMPT_HEADER,
    OutgoingMessage,
    build_event,
    build_work,
    parse_event,
    parse_work,
)
from motcua.messaging.outbox import AggregateSchema, Outbox
from motcua.messaging.publisher import Publisher
from motcua.store import SqliteStore
from motcua.unit_of_work import UnitOfWork, UnitsOfWork

pytestmark = pytest.mark.integration

DELAYS = [200, 400]
CONSUMER = "routing-worker"


@pytest.fixture
def processed(store):
    return store.collection(ProcessedMessage)


@pytest.fixture
def district():
    return f"t{uuid.uuid4().hex[:10]}"


def declare(uri: str, service: str, district: str, delays=DELAYS) -> str:
    with Connection(uri) as connection:
        topology.declare(connection, [service], [district], delays, with_stream=False)
    return topology.queue_name(service, district)


@pytest.fixture
def queue(vhost_uri, district):
    """routing.<district> with its retry queues (200 ms, 400 ms) and its .dlq."""
    return declare(vhost_uri, "routing", district)


@pytest.fixture
def channel(vhost_uri):
    connection = pika.BlockingConnection(pika.URLParameters(vhost_uri))
    yield connection.channel()
    if connection.is_open:
        connection.close()


def take(channel, queue: str, timeout: float = 5.0) -> Delivery | None:
    """The next message of ``queue`` as a consumer would get it (acknowledged), or None."""
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return Delivery(body=body, headers=props.headers or {}, content_type=props.content_type, queue=queue,
                            routing_key=method.routing_key, redelivered=method.redelivered)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def count(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def send_work(publisher: Publisher, district: str, **body) -> str:
    work = build_work(service="routing", area=district, type="routing.route_dossier",
                      body={"dossier_id": "d-1", **body})
    publisher.publish(work.to_outgoing())
    return work.id


class Handler:
    """The test's handler: records what it was given, then fails as told."""

    def __init__(self, fail: Exception | None = None):
        self.fail = fail
        self.calls: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        self.calls.append(delivery)
        if self.fail is not None:
            raise self.fail


def handling(processed, publisher, consumer: str = CONSUMER, delays=DELAYS) -> MessageHandling:
    return MessageHandling(consumer, processed, publisher, delays)


def death_queues(delivery: Delivery) -> list[str]:
    return [death["queue"] for death in delivery.headers.get("x-death") or []]


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- success and duplicates -----------------------------------------------------------------------


def test_success_is_processed_once_and_a_second_delivery_is_a_duplicate(
        processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    assert delivery is not None and delivery.id == mid and delivery.attempt == 0
    handler = Handler()
    runner = handling(processed, publisher)

    assert runner.run(delivery, handler) == "processed"
    assert len(handler.calls) == 1
    assert parse_work(handler.calls[0].body, handler.calls[0].headers, queue).body == {"dossier_id": "d-1"}
    record = processed.get(f"{CONSUMER}:{mid}")
    assert record is not None
    assert record["consumer"] == CONSUMER and record["message_id"] == mid and record["processed_at"].tzinfo

    # The same message again (a redelivery after a lost ack, or a duplicate publish).
    assert runner.run(delivery, handler) == "duplicate"
    again = Delivery(body=delivery.body, headers=delivery.headers, content_type=delivery.content_type, queue=queue,
                     redelivered=True)
    assert handling(processed, publisher).run(again, handler) == "duplicate"  # another instance, same store
    assert len(handler.calls) == 1

    # Nothing was set aside.
    for name in (f"{queue}.retry.1", f"{queue}.retry.2", f"{queue}.dlq", queue):
        assert count(channel, name) == 0


def test_processed_ids_are_per_consumer(processed, publisher, channel, queue, district):
    send_work(publisher, district)
    delivery = take(channel, queue)
    first, second = Handler(), Handler()
    assert handling(processed, publisher, "routing-worker").run(delivery, first) == "processed"
    assert handling(processed, publisher, "archive-worker").run(delivery, second) == "processed"
    assert len(first.calls) == len(second.calls) == 1


def test_a_public_event_is_identified_by_its_cloud_events_id(processed, publisher, channel, vhost_uri, district):
    queue = declare(vhost_uri, "notify", district)
    event = build_event(name="dossier.received", data=events_pb2.DossierReceived(code="C-9"),
                        source="/motcua/intake", subject="C-9", area=district)
    publisher.publish(event.to_outgoing())
    delivery = take(channel, queue)
    assert delivery is not None and delivery.id == event.id

    seen = []
    runner = handling(processed, publisher, "notify-worker")
    handler = lambda d: seen.append(parse_event(d.body, d.headers, d.content_type))  # noqa: E731
    assert runner.run(delivery, handler) == "processed"
    assert runner.run(delivery, handler) == "duplicate"
    assert [e.id for e in seen] == [event.id]
    assert seen[0].decode(events_pb2.DossierReceived).code == "C-9"


def test_a_failed_handler_is_not_recorded_as_processed(processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    assert handling(processed, publisher).run(delivery, Handler(RuntimeError("boom"))) == "retried"
    assert processed.get(f"{CONSUMER}:{mid}") is None
    # A later success still runs the handler.
    handler = Handler()
    assert handling(processed, publisher).run(delivery, handler) == "processed"
    assert len(handler.calls) == 1


# -- the record in the handler's unit of work -------------------------------------------------------


class Effect(AggregateSchema):
    """What the tests' handlers write: one document per message."""

    meta = {"collection": "effects"}
    note = StringField()


def sqlite_commits() -> float:
    return REGISTRY.get_sample_value("motcua_store_commits_total", {"backend": "sqlite", "synchronous": "FULL"}) or 0.0


class WritingHandler:
    """A handler whose use case writes one Effect per message, the write that completes it."""

    def __init__(self, store, publisher, completes_message: bool = True):
        self.uows = UnitsOfWork(store, Outbox(publisher))
        self.completes_message = completes_message
        self.calls = 0

    def __call__(self, delivery: Delivery) -> None:
        self.calls += 1

        def write(uow: UnitOfWork) -> None:
            if uow.get(Effect, delivery.id) is None:
                uow.add(Effect, {"_id": delivery.id, "note": "done"})
                uow.commit(completes_message=self.completes_message)
        self.uows.run(write)


def test_a_write_that_completes_the_message_carries_its_record_in_the_same_commit(
        store, processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    handler = WritingHandler(store, publisher)
    before = sqlite_commits()
    assert handling(processed, publisher).run(delivery, handler) == "processed"
    assert store.collection(Effect).get(mid)["note"] == "done"
    assert processed.get(f"{CONSUMER}:{mid}") is not None
    if isinstance(store, SqliteStore):
        assert sqlite_commits() - before == 1  # the effect and the record: one transaction, one fsync (was 2)

    # Delivered again after the commit (a lost ack, a crash before it, a duplicate publish): skipped.
    again = Delivery(body=delivery.body, headers=delivery.headers, content_type=delivery.content_type, queue=queue,
                     redelivered=True)
    assert handling(processed, publisher).run(again, handler) == "duplicate"
    assert handler.calls == 1


def test_a_write_that_does_not_complete_the_message_is_followed_by_a_record_of_its_own(
        store, processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    before = sqlite_commits()
    assert handling(processed, publisher).run(delivery, WritingHandler(store, publisher, False)) == "processed"
    assert processed.get(f"{CONSUMER}:{mid}") is not None
    if isinstance(store, SqliteStore):
        assert sqlite_commits() - before == 2


def test_the_record_and_the_write_it_rides_with_are_stored_both_or_neither(
        sqlite_store, publisher, channel, queue, district):
    """A failure at the commit (here the record's insert fails inside the transaction) leaves
    neither the effect nor the record; the message is retried and then done once."""
    processed = sqlite_store.collection(ProcessedMessage)
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    handler = WritingHandler(sqlite_store, publisher)
    broken = MessageHandling(CONSUMER, FlakyCollection(processed, fail_insert=True), publisher, DELAYS)
    assert broken.run(delivery, handler) == "retried"
    assert sqlite_store.collection(Effect).get(mid) is None and processed.get(f"{CONSUMER}:{mid}") is None
    assert take(channel, f"{queue}.retry.1") is not None

    assert handling(processed, publisher).run(delivery, handler) == "processed"
    assert sqlite_store.collection(Effect).get(mid) is not None and processed.get(f"{CONSUMER}:{mid}") is not None


def test_a_message_the_handler_took_nothing_from_leaves_no_record(processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    calls = []

    def ignore(d: Delivery) -> object:
        calls.append(d)
        return NOTHING_TO_REMEMBER

    assert handling(processed, publisher).run(delivery, ignore) == "processed"
    assert processed.get(f"{CONSUMER}:{mid}") is None
    assert handling(processed, publisher).run(delivery, ignore) == "processed"  # decided afresh: nothing again
    assert len(calls) == 2


# -- retry and parking ----------------------------------------------------------------------------


def test_failure_copies_the_message_to_the_first_retry_queue(processed, publisher, channel, vhost_uri, district):
    # Long delays so the copy can be looked at while it waits.
    queue = declare(vhost_uri, "signing", district, delays=[5000, 5000])
    work = build_work(service="signing", area=district, type="signing.sign", body={"n": 1})
    publisher.publish(work.to_outgoing())
    delivery = take(channel, queue)

    result = handling(processed, publisher, "signing-worker", delays=[5000, 5000]).run(
        delivery, Handler(RuntimeError("HSM busy")))
    assert result == "retried"
    assert count(channel, queue) == 0 and count(channel, f"{queue}.dlq") == 0
    copy = take(channel, f"{queue}.retry.1", timeout=1)
    assert copy is not None
    assert copy.body == delivery.body and copy.content_type == "application/json"
    assert copy.id == work.id
    assert copy.attempt == 1 and copy.headers[ATTEMPT_HEADER] == 1
    assert text(copy.headers["motcua-last-error"]) == "RuntimeError: HSM busy"
    assert text(copy.headers["motcua-origin-queue"]) == queue
    assert text(copy.headers["motcua-work-type"]) == "signing.sign"
    assert parse_work(copy.body, copy.headers, queue) == parse_work(delivery.body, delivery.headers, queue)


def test_failures_retry_with_backoff_then_park(processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    failing = Handler(ValueError("no route for procedure 1.004616"))
    runner = handling(processed, publisher)

    # 1st failure: through retry.1 (200 ms) and back to the queue.
    started = time.monotonic()
    assert runner.run(delivery, failing) == "retried"
    back = take(channel, queue)
    assert back is not None, "the message did not come back from retry.1"
    assert time.monotonic() - started >= 0.15
    assert back.id == mid and back.attempt == 1 and back.body == delivery.body
    assert death_queues(back) == [f"{queue}.retry.1"]
    assert text(back.headers["x-death"][0]["reason"]) == "expired"

    # 2nd failure: through retry.2 (400 ms) and back.
    started = time.monotonic()
    assert runner.run(back, failing) == "retried"
    back2 = take(channel, queue)
    assert back2 is not None, "the message did not come back from retry.2"
    assert time.monotonic() - started >= 0.35
    assert back2.attempt == 2 and back2.id == mid
    assert f"{queue}.retry.2" in death_queues(back2)

    # 3rd failure, the last attempt: parked.
    assert runner.run(back2, failing) == "parked"
    parked = take(channel, f"{queue}.dlq")
    assert parked is not None
    assert parked.id == mid and parked.body == delivery.body and parked.attempt == 3
    assert text(parked.headers["motcua-last-error"]) == "ValueError: no route for procedure 1.004616"
    assert text(parked.headers["motcua-origin-queue"]) == queue
    assert text(parked.headers["motcua-failed-at"])
    assert len(failing.calls) == 3
    assert processed.get(f"{CONSUMER}:{mid}") is None

    # It stays parked: nothing goes back to the queue on its own.
    time.sleep(0.6)
    for name in (queue, f"{queue}.retry.1", f"{queue}.retry.2", f"{queue}.dlq"):
        assert count(channel, name) == 0, name


def test_at_the_last_attempt_the_message_goes_to_the_dlq(processed, publisher, channel, queue):
    headers = {"message-id": "m-last", "motcua-work-type": "routing.route_dossier", ATTEMPT_HEADER: len(DELAYS)}
    delivery = Delivery(body=b'{"dossier_id":"d-2"}', headers=headers, content_type="application/json", queue=queue)
    assert handling(processed, publisher).run(delivery, Handler(KeyError("step"))) == "parked"
    parked = take(channel, f"{queue}.dlq")
    assert parked is not None and parked.id == "m-last" and parked.attempt == len(DELAYS) + 1
    assert text(parked.headers["motcua-last-error"]) == "KeyError: 'step'"
    assert count(channel, f"{queue}.retry.1") == count(channel, f"{queue}.retry.2") == 0


def test_a_long_error_is_cut_to_500_characters(processed, publisher, channel, queue):
    delivery = Delivery(body=b"{}", headers={"message-id": "m-long", ATTEMPT_HEADER: 2}, content_type=None,
                        queue=queue)
    assert handling(processed, publisher).run(delivery, Handler(RuntimeError("x" * 5000))) == "parked"
    parked = take(channel, f"{queue}.dlq")
    assert len(text(parked.headers["motcua-last-error"])) == 500
    assert parked.content_type == "application/octet-stream"


def test_permanent_failure_is_parked_at_once(processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    delivery = take(channel, queue)
    handler = Handler(PermanentFailure("unknown work type routing.teleport"))
    assert handling(processed, publisher).run(delivery, handler) == "parked"
    parked = take(channel, f"{queue}.dlq")
    assert parked is not None and parked.id == mid and parked.attempt == 1
    assert text(parked.headers["motcua-last-error"]) == "PermanentFailure: unknown work type routing.teleport"
    assert count(channel, f"{queue}.retry.1") == 0 and count(channel, queue) == 0
    assert processed.get(f"{CONSUMER}:{mid}") is None


def test_a_delivery_without_an_id_is_parked_and_not_handled(processed, publisher, channel, queue):
    delivery = Delivery(body=b'{"dossier_id":"d-3"}', headers={"motcua-work-type": "routing.route_dossier"},
                        content_type="application/json", queue=queue)
    handler = Handler()
    assert handling(processed, publisher).run(delivery, handler) == "parked"
    assert handler.calls == []
    parked = take(channel, f"{queue}.dlq")
    assert parked is not None and parked.body == delivery.body
    assert text(parked.headers["motcua-last-error"]) == "message has no id"
    assert text(parked.headers["motcua-origin-queue"]) == queue
    assert count(channel, f"{queue}.retry.1") == 0


def test_a_message_that_can_be_neither_handled_nor_set_aside_raises(processed, queue):
    broken = Publisher(f"amqp://guest:guest@127.0.0.1:{infra.free_port()}/")
    try:
        delivery = Delivery(body=b"{}", headers={"message-id": "m-stuck"}, content_type=None, queue=queue)
        with pytest.raises(Exception):  # noqa: B017 - whatever the broker client raises
            handling(processed, broken).run(delivery, Handler(RuntimeError("boom")))
    finally:
        broken.close()
    assert processed.get(f"{CONSUMER}:m-stuck") is None


def test_a_parked_message_can_be_replayed_by_an_operator(processed, publisher, channel, queue, district):
    mid = send_work(publisher, district)
    runner = handling(processed, publisher)
    assert runner.run(take(channel, queue), Handler(PermanentFailure("bad"))) == "parked"
    parked = take(channel, f"{queue}.dlq")
    # The operator fixes the cause and republishes the parked message to its origin queue.
    origin = text(parked.headers["motcua-origin-queue"])
    publisher.publish(OutgoingMessage(id=parked.id, exchange="", routing_key=origin, body=parked.body,
                                      content_type=parked.content_type, headers=parked.headers))
    handler = Handler()
    assert runner.run(take(channel, origin), handler) == "processed"
    assert [d.id for d in handler.calls] == [mid]
    assert processed.get(f"{CONSUMER}:{mid}") is not None


# -- poison: whatever a delivery carries, it is processed or parked, never raised on -------------


def good_headers(**overrides) -> dict:
    headers = {"message-id": f"m-{uuid.uuid4()}", "motcua-work-type": "routing.route_dossier", **overrides}
    return {key: value for key, value in headers.items() if value is not None}


BAD_HEADERS = {
    "attempt-abc": ({ATTEMPT_HEADER: "abc"}, "motcua-attempt header is not an integer from 0 to 100: 'abc'"),
    "attempt-negative": ({ATTEMPT_HEADER: -10}, "motcua-attempt header is not an integer from 0 to 100: -10"),
    "attempt-huge": ({ATTEMPT_HEADER: 2**63 - 1}, f"from 0 to 100: {2**63 - 1}"),
    "attempt-bytes": ({ATTEMPT_HEADER: b"1"}, "from 0 to 100: b'1'"),
    "attempt-bool": ({ATTEMPT_HEADER: True}, "from 0 to 100: True"),
    "attempt-float": ({ATTEMPT_HEADER: 1.0}, "from 0 to 100: 1.0"),
    "id-10kb": ({"message-id": "i" * 10240}, "message id is 10240 bytes long (at most 255): 'iii"),
    "id-not-utf8": ({"message-id": b"\xff\xfe-id"}, "message id is not UTF-8: b'\\xff\\xfe-id'"),
    "id-lone-surrogate": ({"message-id": "id-\udcff"}, "message id is not valid Unicode text"),
    "id-int": ({"message-id": 12345}, "message id is a int, not text: 12345"),
    "id-missing": ({"message-id": None}, "message has no id"),
    "event-id-not-utf8": ({"cloudEvents:id": b"\xc3\x28"}, "message id is not UTF-8"),
}


@pytest.mark.parametrize("shape", sorted(BAD_HEADERS))
def test_a_delivery_with_unusable_headers_is_parked_with_the_reason_before_the_handler(
        processed, publisher, channel, queue, shape):
    overrides, reason = BAD_HEADERS[shape]
    delivery = Delivery(body=b'{"dossier_id":"d-1"}', headers=good_headers(**overrides),
                        content_type="application/json", queue=queue)
    handler = Handler()
    assert handling(processed, publisher).run(delivery, handler) == "parked"
    assert handler.calls == []
    parked = take(channel, f"{queue}.dlq")
    assert parked is not None and parked.body == delivery.body
    last_error = text(parked.headers["motcua-last-error"])
    assert reason in last_error and len(last_error) <= 200
    assert parked.attempt == 1  # an unusable attempt header counts as none: the copy says 1
    assert text(parked.headers["motcua-origin-queue"]) == queue
    assert count(channel, f"{queue}.retry.1") == 0 and count(channel, queue) == 0


BAD_BODIES = {
    "not-json": (b"{not json", "application/json", "body is not JSON: Expecting property name"),
    "not-utf8": (b'{"a": "\xff"}', "application/json", "body is not UTF-8, as JSON must be"),
    "empty": (b"", "application/json", "body is not JSON: Expecting value"),
    "1mb-garbage": (bytes(range(256)) * 4096, "application/json", "body is not UTF-8"),
    "deeply-nested": (b"[" * 100_000 + b"]" * 100_000, "application/json", "body is not JSON"),
    "text-plain": (b'{"dossier_id":"d-1"}', "text/plain", "content type 'text/plain' is not one motcua accepts"),
    "content-type-bytes": (b'{"dossier_id":"d-1"}', b"\xff/json", "content type b'\\xff/json'"),
}


@pytest.mark.parametrize("shape", sorted(BAD_BODIES))
def test_a_body_motcua_cannot_decode_is_parked_with_the_reason_before_the_handler(
        processed, publisher, channel, queue, shape):
    body, content_type, reason = BAD_BODIES[shape]
    delivery = Delivery(body=body, headers=good_headers(), content_type=content_type, queue=queue)
    handler = Handler()
    assert handling(processed, publisher).run(delivery, handler) == "parked"
    assert handler.calls == []
    parked = take(channel, f"{queue}.dlq")
    assert parked is not None and parked.body == body and parked.id == delivery.id
    assert reason in text(parked.headers["motcua-last-error"])
    # A content type that is not text cannot travel as one: the copy says octet-stream.
    assert parked.content_type == (content_type if isinstance(content_type, str) else "application/octet-stream")


def test_a_json_content_type_with_parameters_and_a_bad_traceparent_are_still_processed(
        processed, publisher, queue):
    delivery = Delivery(body='{"tên": "Thanh Hóa"}'.encode(), content_type="application/json; charset=utf-8",
                        headers=good_headers(traceparent=b"\xff" * 60, **{"cloudEvents:traceparent": 7}),
                        queue=queue)
    assert delivery.traceparent is None
    handler = Handler()
    assert handling(processed, publisher).run(delivery, handler) == "processed"
    assert len(handler.calls) == 1


def test_reading_a_delivery_never_raises_whatever_its_headers():
    weird = Delivery(body=None, headers=None, content_type=None, queue="routing.x")  # type: ignore[arg-type]
    assert weird.id == "" and weird.attempt == 0 and weird.traceparent is None
    assert weird.problems() == ["message has no id"]
    assert weird.fingerprint() == Delivery(body=b"", headers={}, content_type=None, queue="routing.x").fingerprint()
    odd = Delivery(body=b"x", headers={b"\xff": b"\xfe", "x-death": [{"count": 1}], ATTEMPT_HEADER: [1]},
                   content_type=b"\xff", queue="routing.x")
    assert odd.id == "" and odd.attempt == 0
    assert len(odd.problems()) == 3  # no id, attempt not an int, content type not text


class FlakyCollection:
    """A processed-message collection whose reads or writes fail (a store outage)."""

    def __init__(self, inner, fail_get=False, fail_insert=False):
        self.inner, self.fail_get, self.fail_insert = inner, fail_get, fail_insert

    def get(self, key):
        if self.fail_get:
            raise OSError("store unreachable")
        return self.inner.get(key)

    def insert(self, doc):
        if self.fail_insert:
            raise OSError("disk full")
        return self.inner.insert(doc)


def test_a_store_that_cannot_be_read_is_a_failure_retried_within_the_budget(processed, publisher, channel, queue):
    delivery = Delivery(body=b"{}", headers=good_headers(), content_type=None, queue=queue)
    handler = Handler()
    broken = MessageHandling(CONSUMER, FlakyCollection(processed, fail_get=True), publisher, DELAYS)
    assert broken.run(delivery, handler) == "retried"
    assert handler.calls == []
    last = Delivery(body=b"{}", headers=good_headers(**{ATTEMPT_HEADER: len(DELAYS)}), content_type=None, queue=queue)
    assert broken.run(last, handler) == "parked"
    parked = take(channel, f"{queue}.dlq")
    assert "could not look up processed messages: OSError: store unreachable" in text(
        parked.headers["motcua-last-error"])


def test_a_handled_message_that_cannot_be_recorded_is_retried_not_raised(processed, publisher, channel, queue):
    delivery = Delivery(body=b"{}", headers=good_headers(), content_type=None, queue=queue)
    handler = Handler()
    broken = MessageHandling(CONSUMER, FlakyCollection(processed, fail_insert=True), publisher, DELAYS)
    assert broken.run(delivery, handler) == "retried"
    assert len(handler.calls) == 1
    copy = take(channel, f"{queue}.retry.1")
    assert "handled, but could not record it: OSError: disk full" in text(copy.headers["motcua-last-error"])


# -- the redelivery guard: the last line when a message can be neither processed nor set aside --


def guard_for(uri: str) -> RedeliveryGuard:
    return RedeliveryGuard(lambda: Publisher(uri), base_delay_s=0.5, max_delay_s=30)


def test_the_guard_requeues_a_first_failure_after_a_pause_and_parks_a_second(vhost_uri, channel, queue):
    guard = guard_for(vhost_uri)
    try:
        headers = {**good_headers(), "x-death": [{"count": 1, "queue": "q"}], b"\xff": "key not text"}
        delivery = Delivery(body=b'{"n":1}', headers=headers, content_type="application/json", queue=queue)
        assert guard.failed(delivery, RuntimeError("broker refused the copy")) == 0.5
        assert count(channel, f"{queue}.dlq") == 0
        # Requeued, it comes back flagged redelivered and fails again: parked, not requeued.
        again = Delivery(body=delivery.body, headers=delivery.headers, content_type=delivery.content_type,
                         queue=queue, redelivered=True)
        assert guard.failed(again, RuntimeError("broker refused the copy")) is None
        parked = take(channel, f"{queue}.dlq")
        assert parked is not None and parked.body == delivery.body and parked.id == delivery.id
        assert text(parked.headers["motcua-last-error"]) == (
            "could not be processed or set aside: RuntimeError: broker refused the copy")
        assert text(parked.headers["motcua-parked-by"]) == "redelivery-guard"
        assert text(parked.headers["motcua-work-type"]) == "routing.route_dossier"
        assert "x-death" in text(parked.headers["motcua-dropped-headers"])
        assert text(parked.headers["motcua-origin-queue"]) == queue
        # Seen failing before in this process counts as well as the redelivered flag.
        other = Delivery(body=b'{"n":2}', headers=good_headers(), content_type=None, queue=queue)
        assert guard.failed(other, "boom") == 0.5
        assert guard.failed(other, "boom") is None
        assert take(channel, f"{queue}.dlq") is not None
    finally:
        guard.close()


class UnreachableBroker:
    """A publisher whose every publish fails at once (the real one to a closed port takes seconds)."""

    def __init__(self):
        self.attempts = 0

    def publish(self, message, declare_queue=None):
        self.attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")

    def close(self):
        pass


def test_when_even_parking_fails_the_guard_backs_off_and_never_raises(queue):
    broker = UnreachableBroker()
    guard = RedeliveryGuard(lambda: broker, base_delay_s=0.5, max_delay_s=30)
    try:
        delivery = Delivery(body=b"{}", headers={"message-id": "m-stuck"}, content_type=None, queue=queue,
                            redelivered=True)
        delays = [guard.failed(delivery, RuntimeError("broker away")) for _ in range(10)]
        assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
        assert broker.attempts == 10  # it tried to park it every time
        guard.succeeded(delivery)  # once it goes through, the count starts again
        assert guard.failed(delivery, "again") == 0.5
    finally:
        guard.close()


def test_the_guard_remembers_a_bounded_number_of_messages(queue):
    guard = RedeliveryGuard(UnreachableBroker, remembered=3)
    for n in range(10):
        guard.failed(Delivery(body=str(n).encode(), headers={}, content_type=None, queue=queue), "x")
    assert len(guard._failures) == 3


def test_a_message_parked_for_its_attempt_header_goes_through_once_replayed(
        processed, publisher, channel, vhost_uri, queue):
    """dlq-replay removes motcua-attempt: the replayed message gets a fresh, known budget."""
    from motcua import operate

    mid = f"m-{uuid.uuid4()}"
    publisher.publish(OutgoingMessage(id=mid, exchange="", routing_key=queue, body=b'{"dossier_id":"d-9"}',
                                      content_type="application/json",
                                      headers=good_headers(**{"message-id": mid, ATTEMPT_HEADER: "abc"})))
    runner = handling(processed, publisher)
    handler = Handler()
    assert runner.run(take(channel, queue), handler) == "parked"
    assert operate.replay_parked(vhost_uri, queue) == 1
    replayed = take(channel, queue)
    assert ATTEMPT_HEADER not in replayed.headers and replayed.problems() == []
    assert runner.run(replayed, handler) == "processed"
    assert [d.id for d in handler.calls] == [mid]
