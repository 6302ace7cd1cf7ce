"""The outbox against a real RabbitMQ (a private vhost) and both store backends (SQLite and MongoDB
through mongomock): messages saved with the state are published after the write by that write
alone and removed; a broker outage leaves them for the relay; the relay claims and publishes what
a crash left behind, and never what a live writer is about to publish."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pika
import pika.exceptions
import pytest
from mongoengine import StringField
from motcua_dev import infra

from motcua.events.v1 import events_pb2
from motcua.messaging import topology
from motcua.messaging.envelope import (
    HEADER_PREFIX,
    OutgoingMessage,
    build_event,
    build_work,
    parse_event,
    parse_work,
)
from motcua.messaging.outbox import (
    ADDED_AT,
    CLAIMED_AT,
    OUTBOX,
    OUTBOX_SINCE,
    AggregateSchema,
    Outbox,
    OutboxRelay,
    add_messages,
    message_ids,
)
from motcua.messaging.publisher import Publisher

pytestmark = pytest.mark.integration


class SampleCase(AggregateSchema):
    """A small aggregate: its own fields and index, plus the outbox fields of AggregateSchema."""

    meta = {"collection": "sample_cases", "indexes": ["district"]}

    district = StringField(required=True)
    status = StringField(required=True)


@pytest.fixture
def cases(store):
    return store.collection(SampleCase)


@pytest.fixture
def district():
    """A district of this test alone: its events and work queue see no other test's messages."""
    return f"t{uuid.uuid4().hex[:10]}"


class Observer:
    """An independent AMQP consumer (pika): its own exclusive queue bound to this district's
    events, and the district's routing work queue."""

    def __init__(self, uri: str, district: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(topology.EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
        self.events_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.events_queue, topology.EVENTS_EXCHANGE.name, routing_key=f"{district}.#")
        self.work_queue = topology.queue_name("routing", district)

    def take(self, queue: str, count: int, timeout: float = 5.0, settle: float = 0.3) -> list:
        """Wait for ``count`` messages, then a little longer to catch any unexpected extra."""
        got: list = []
        deadline = time.monotonic() + timeout
        extra_until = None
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is not None:
                got.append((method, props, body))
                continue
            now = time.monotonic()
            if len(got) >= count:
                extra_until = extra_until or now + settle
                if now >= extra_until:
                    return got
            elif now >= deadline:
                return got
            time.sleep(0.02)

    def events(self, count: int, **kw) -> list:
        return self.take(self.events_queue, count, **kw)

    def work(self, count: int, **kw) -> list:
        try:
            self.channel.queue_declare(self.work_queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:  # the publisher never declared it: nothing sent
            self.channel = self.connection.channel()
            return []
        return self.take(self.work_queue, count, **kw)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def observer(vhost_uri, district):
    obs = Observer(vhost_uri, district)
    yield obs
    obs.close()


def returned_event(district: str, code: str):
    return build_event(name="dossier.returned", data=events_pb2.DossierReturned(code=code, area=district),
                       source="/motcua/test", subject=code, area=district)


def received_event(district: str, code: str):
    return build_event(name="dossier.received", data=events_pb2.DossierReceived(code=code, area=district),
                       source="/motcua/test", subject=code, area=district)


def new_case(district: str, case_id: str | None = None, **fields) -> dict:
    return {"_id": case_id or f"case-{uuid.uuid4().hex[:8]}", "district": district, "status": "received",
            **fields}


def ids_of(entries) -> list[str]:
    return [entry["id"] for entry in entries or []]


def aged(doc: dict, age: timedelta) -> dict:
    """A document as a writer that crashed ``age`` ago left it: its entries and outbox_since that old."""
    then = datetime.now(UTC) - age
    return {**doc, OUTBOX: [{**e, ADDED_AT: then} for e in doc[OUTBOX]], OUTBOX_SINCE: then}


def event_ids(deliveries) -> list[str]:
    return [props.headers[f"{HEADER_PREFIX}id"] for _method, props, _body in deliveries]


# -- write then flush -----------------------------------------------------------------------------


def test_add_messages_keeps_them_in_the_document(cases, district):
    first, second = received_event(district, "C-1"), returned_event(district, "C-1")
    doc = add_messages(new_case(district), [first])
    since = doc[OUTBOX_SINCE]
    assert since.tzinfo is not None and ids_of(doc[OUTBOX]) == [first.id]
    assert doc[OUTBOX][0][ADDED_AT] == since  # each entry is stamped: the relay goes by its age
    add_messages(doc, [second.to_outgoing()])
    assert ids_of(doc[OUTBOX]) == [first.id, second.id]
    assert doc[OUTBOX_SINCE] == since  # the oldest pending entry's time
    assert add_messages(new_case(district), []).get(OUTBOX) is None

    stored = cases.insert(doc)
    assert ids_of(stored[OUTBOX]) == [first.id, second.id]
    assert [OutgoingMessage.from_outbox(e) for e in cases.get(stored["_id"])[OUTBOX]] == [
        first.to_outgoing(), second.to_outgoing()]


def test_flush_publishes_every_message_and_clears_the_outbox(cases, publisher, observer, district):
    received, returned = received_event(district, "C-1"), returned_event(district, "C-1")
    work = build_work(service="routing", area=district, type="routing.route_dossier",
                      body={"dossier_id": "d-1"}, traceparent=received.traceparent)
    stored = cases.insert(add_messages(new_case(district), [received, returned, work]))
    assert len(stored[OUTBOX]) == 3 and stored[OUTBOX_SINCE] is not None
    assert cases.count({OUTBOX_SINCE: {"$lte": datetime.now(UTC)}}) == 1

    assert Outbox(publisher).flush(cases, stored, message_ids([received, returned, work])) is True

    events = observer.events(2)
    assert event_ids(events) == [received.id, returned.id]
    for (method, props, body), sent in zip(events, (received, returned), strict=True):
        assert method.routing_key == sent.routing_key
        assert props.content_type == "application/protobuf"
        assert props.message_id == sent.id
        assert props.delivery_mode == 2
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in props.headers.items()}
        assert headers == sent.headers()
        assert parse_event(body, props.headers, props.content_type) == sent
    assert parse_event(events[1][2], events[1][1].headers, "application/protobuf").decode(
        events_pb2.DossierReturned).code == "C-1"
    works = observer.work(1)
    assert len(works) == 1
    _method, props, body = works[0]
    assert parse_work(body, props.headers, observer.work_queue) == work

    after = cases.get(stored["_id"])
    assert not after.get(OUTBOX)
    assert after.get(OUTBOX_SINCE) is None
    assert after["version"] == 2 and after["status"] == "received"
    assert cases.count({OUTBOX_SINCE: {"$lte": datetime.now(UTC)}}) == 0
    # Nothing left for the relay.
    assert OutboxRelay([cases], Outbox(publisher), grace=timedelta(0)).sweep() == 0
    assert observer.events(0) == []


def test_flush_of_a_document_without_messages_writes_nothing(cases, publisher):
    stored = cases.insert(new_case("bim-son"))
    assert Outbox(publisher).flush(cases, stored, []) is True
    assert cases.get(stored["_id"])["version"] == 1


def test_flush_with_an_unreachable_broker_keeps_the_messages(cases, vhost_uri, observer, district):
    event = returned_event(district, "C-2")
    stored = cases.insert(add_messages(new_case(district), [event]))
    broken = Publisher(f"amqp://guest:guest@127.0.0.1:{infra.free_port()}/")
    try:
        started = time.monotonic()
        assert Outbox(broken).flush(cases, stored, [event.id]) is False
        assert time.monotonic() - started < 10
    finally:
        broken.close()
    after = cases.get(stored["_id"])
    assert ids_of(after[OUTBOX]) == [event.id]
    assert after[OUTBOX_SINCE] == stored[OUTBOX_SINCE]
    assert after["version"] == 1
    assert observer.events(0) == []

    # Once the broker answers, the pending message goes out (here through the relay).
    good = Publisher(vhost_uri)
    try:
        assert OutboxRelay([cases], Outbox(good), grace=timedelta(0)).sweep() == 1
    finally:
        good.close()
    assert event_ids(observer.events(1)) == [event.id]
    assert not cases.get(stored["_id"]).get(OUTBOX)


def test_flush_with_a_wrong_vhost_keeps_the_messages(cases, observer, district):
    event = returned_event(district, "C-3")
    stored = cases.insert(add_messages(new_case(district), [event]))
    broken = Publisher(f"amqp://guest:guest@127.0.0.1:5672/motcua-no-such-vhost-{uuid.uuid4().hex[:6]}")
    try:
        assert Outbox(broken).flush(cases, stored, [event.id]) is False
    finally:
        broken.close()
    assert ids_of(cases.get(stored["_id"])[OUTBOX]) == [event.id]
    assert observer.events(0) == []


def test_publishers_opened_and_closed_one_after_another_all_publish(vhost_uri, observer, district):
    # A process may open and close several publishers on one broker (an api and a worker in one
    # test, a restarted runtime): closing one must not break the next.
    sent = []
    for _ in range(3):
        pub = Publisher(vhost_uri)
        try:
            for _ in range(2):
                event = returned_event(district, "P-1")
                pub.publish(event.to_outgoing())
                sent.append(event.id)
        finally:
            pub.close()
    assert event_ids(observer.events(6)) == sent


# -- the relay ------------------------------------------------------------------------------------


def test_relay_publishes_what_a_crash_left_pending_and_not_what_is_younger_than_the_grace(
        cases, publisher, observer, district):
    # "Crashed" writers: state and messages saved, never flushed.
    old = [returned_event(district, "OLD-1"), received_event(district, "OLD-1")]
    crashed = cases.insert(aged(add_messages(new_case(district, "crashed"), old), timedelta(minutes=10)))
    young_event = returned_event(district, "YOUNG-1")
    young = cases.insert(add_messages(new_case(district, "young"), [young_event]))
    quiet = cases.insert(new_case(district, "quiet"))

    relay = OutboxRelay([cases], Outbox(publisher), grace=timedelta(minutes=1))
    assert relay.sweep() == 2
    assert event_ids(observer.events(2)) == [e.id for e in old]
    assert not cases.get(crashed["_id"]).get(OUTBOX)
    assert cases.get(crashed["_id"]).get(OUTBOX_SINCE) is None
    assert ids_of(cases.get(young["_id"])[OUTBOX]) == [young_event.id]  # its writer may still flush it
    assert cases.get(quiet["_id"])["version"] == 1

    assert relay.sweep() == 0  # nothing published twice
    assert observer.events(0) == []

    assert OutboxRelay([cases], Outbox(publisher), grace=timedelta(0)).sweep() == 1
    assert event_ids(observer.events(1)) == [young_event.id]
    assert not cases.get(young["_id"]).get(OUTBOX)


def test_relay_takes_the_oldest_first_in_batches(cases, publisher, observer, district):
    events = {}
    for n, age in ((1, 5), (2, 30), (3, 15)):
        events[n] = returned_event(district, f"B-{n}")
        cases.insert(aged(add_messages(new_case(district, f"batch-{n}"), [events[n]]), timedelta(minutes=age)))
    relay = OutboxRelay([cases], Outbox(publisher), grace=timedelta(minutes=1), batch=1)
    assert relay.sweep() == 1
    assert event_ids(observer.events(1)) == [events[2].id]
    assert relay.sweep() == 1
    assert event_ids(observer.events(1)) == [events[3].id]
    assert relay.sweep() == 1
    assert event_ids(observer.events(1)) == [events[1].id]
    assert relay.sweep() == 0


class OtherCase(AggregateSchema):
    meta = {"collection": "other_cases"}


def test_relay_sweeps_every_collection(store, cases, publisher, observer, district):
    others = store.collection(OtherCase)
    first, second = returned_event(district, "X-1"), returned_event(district, "X-2")
    cases.insert(aged(add_messages(new_case(district), [first]), timedelta(hours=1)))
    others.insert(aged(add_messages({"_id": "o-1"}, [second]), timedelta(hours=1)))
    assert OutboxRelay([cases, others], Outbox(publisher), grace=timedelta(minutes=1)).sweep() == 2
    assert sorted(event_ids(observer.events(2))) == sorted([first.id, second.id])


# -- a write between publish and clear ------------------------------------------------------------


class WriteAfterPublishing(Publisher):
    """A real publisher that lets someone else write the document right after the ``n``-th
    message went out, i.e. between the outbox's publish and its clear."""

    def __init__(self, uri: str, after: int, write: Callable[[], None]):
        super().__init__(uri)
        self._left = after
        self._write = write

    def publish(self, message: OutgoingMessage) -> None:
        super().publish(message)
        self._left -= 1
        if self._left == 0:
            self._write()


def test_concurrent_write_between_publish_and_clear_removes_exactly_the_published_entries(
        cases, vhost_uri, observer, district):
    first, second = returned_event(district, "V-1"), received_event(district, "V-1")
    later = returned_event(district, "V-2")
    stored = cases.insert(add_messages(new_case(district), [first, second]))

    def concurrent_write():  # another request: reads v1, changes state, adds its own message
        current = cases.get(stored["_id"])
        assert current["version"] == 1
        cases.replace(add_messages({**current, "status": "supplemented"}, [later]), 1)

    racing = WriteAfterPublishing(vhost_uri, after=2, write=concurrent_write)
    try:
        assert Outbox(racing).flush(cases, stored, [first.id, second.id]) is True  # the VersionConflict path
    finally:
        racing.close()
    assert event_ids(observer.events(2)) == [first.id, second.id]

    after = cases.get(stored["_id"])
    assert ids_of(after[OUTBOX]) == [later.id]  # the other writer's message is still pending
    assert after["status"] == "supplemented"  # and its state change was kept
    assert after["version"] == 3
    assert after[OUTBOX_SINCE] is not None

    good = Publisher(vhost_uri)
    try:
        assert OutboxRelay([cases], Outbox(good), grace=timedelta(0)).sweep() == 1
    finally:
        good.close()
    assert event_ids(observer.events(1)) == [later.id]
    final = cases.get(stored["_id"])
    assert not final.get(OUTBOX) and final.get(OUTBOX_SINCE) is None and final["status"] == "supplemented"


def test_concurrent_write_without_messages_leaves_a_stale_since_the_relay_clears(
        cases, vhost_uri, observer, district):
    event = returned_event(district, "S-1")
    stored = cases.insert(add_messages(new_case(district), [event]))

    def concurrent_write():
        current = cases.get(stored["_id"])
        cases.replace({**current, "status": "in_progress"}, current["version"])

    racing = WriteAfterPublishing(vhost_uri, after=1, write=concurrent_write)
    try:
        assert Outbox(racing).flush(cases, stored, [event.id]) is True
        assert event_ids(observer.events(1)) == [event.id]
        after = cases.get(stored["_id"])
        assert not after.get(OUTBOX) and after["status"] == "in_progress"

        # The relay looks once more, publishes nothing and clears outbox_since.
        assert OutboxRelay([cases], Outbox(racing), grace=timedelta(0)).sweep() == 0
    finally:
        racing.close()
    assert observer.events(0) == []
    final = cases.get(stored["_id"])
    assert final.get(OUTBOX_SINCE) is None and final["status"] == "in_progress"
    assert cases.count({OUTBOX_SINCE: {"$lte": datetime.now(UTC)}}) == 0


# -- who publishes what: each write its own, the relay what is past the grace ------------------------


def test_a_write_publishes_only_what_it_added_not_another_writers_pending_entries(
        cases, publisher, observer, district):
    # Writer A stores its event and has not published it yet; writer B reads the document (A's
    # entry pending in it), adds its own event and writes: each publishes its own, once.
    mine, theirs = returned_event(district, "W-1"), received_event(district, "W-1")
    written_a = cases.insert(add_messages(new_case(district), [theirs]))
    current = cases.get(written_a["_id"])
    written_b = cases.replace(add_messages({**current, "status": "in_progress"}, [mine]), current["version"])
    assert ids_of(written_b[OUTBOX]) == [theirs.id, mine.id]

    assert Outbox(publisher).flush(cases, written_b, [mine.id]) is True
    assert event_ids(observer.events(1)) == [mine.id]  # not A's
    assert ids_of(cases.get(written_a["_id"])[OUTBOX]) == [theirs.id]  # A's stays A's

    assert Outbox(publisher).flush(cases, written_a, [theirs.id]) is True  # a stale version: pulled
    assert event_ids(observer.events(1)) == [theirs.id]
    after = cases.get(written_a["_id"])
    assert not after[OUTBOX] and after["status"] == "in_progress"
    assert OutboxRelay([cases], Outbox(publisher), grace=timedelta(0)).sweep() == 0
    assert observer.events(0) == []
    assert cases.get(written_a["_id"])[OUTBOX_SINCE] is None


def test_a_writer_leaves_what_is_older_than_half_the_grace_to_the_relay(cases, publisher, observer, district):
    outbox = Outbox(publisher, grace=timedelta(seconds=2))
    relay = OutboxRelay([cases], outbox)  # the outbox's grace
    event = returned_event(district, "G-1")
    stored = cases.insert(add_messages(new_case(district), [event]))
    time.sleep(1.1)  # a slow write: past the writer's half of the grace
    assert outbox.flush(cases, stored, [event.id]) is False
    assert relay.sweep() == 0  # not yet the relay's either
    assert observer.events(0) == []
    time.sleep(max(0.0, 2.05 - (datetime.now(UTC) - stored[OUTBOX][0][ADDED_AT]).total_seconds()))
    assert relay.sweep() == 1
    assert event_ids(observer.events(1)) == [event.id]
    assert not cases.get(stored["_id"])[OUTBOX]


def test_the_relay_takes_a_crashs_leftovers_but_not_a_live_writers_entry_beside_them(
        cases, publisher, observer, district):
    left = returned_event(district, "L-1")
    crashed = cases.insert(aged(add_messages(new_case(district), [left]), timedelta(minutes=10)))
    live = received_event(district, "L-2")  # a writer appends to the document, then publishes
    written = cases.replace(add_messages(cases.get(crashed["_id"]), [live]), crashed["version"])
    assert written[OUTBOX_SINCE] == crashed[OUTBOX_SINCE]  # the oldest entry's time

    assert OutboxRelay([cases], Outbox(publisher), grace=timedelta(minutes=1)).sweep() == 1
    assert event_ids(observer.events(1)) == [left.id]
    assert ids_of(cases.get(crashed["_id"])[OUTBOX]) == [live.id]
    assert Outbox(publisher).flush(cases, written, [live.id]) is True
    assert event_ids(observer.events(1)) == [live.id]
    assert not cases.get(crashed["_id"])[OUTBOX]
    # The writer met the relay's write and pulled its entry: outbox_since lags until the relay
    # looks once more.
    assert OutboxRelay([cases], Outbox(publisher), grace=timedelta(0)).sweep() == 0
    assert cases.get(crashed["_id"])[OUTBOX_SINCE] is None
    assert observer.events(0) == []


class RunWhilePublishing(Publisher):
    """A real publisher that runs ``during`` while its first message is on its way."""

    def __init__(self, uri: str, during: Callable[[], None]):
        super().__init__(uri)
        self._during: Callable[[], None] | None = during

    def publish(self, message: OutgoingMessage) -> None:
        during, self._during = self._during, None
        if during is not None:
            during()
        super().publish(message)


def test_two_relays_never_take_the_same_entry(cases, vhost_uri, publisher, observer, district):
    event = returned_event(district, "R-1")
    stored = cases.insert(aged(add_messages(new_case(district), [event]), timedelta(minutes=5)))
    other = OutboxRelay([cases], Outbox(publisher), grace=timedelta(minutes=1))
    seen_by_other: list[int] = []
    first = RunWhilePublishing(vhost_uri, during=lambda: seen_by_other.append(other.sweep()))
    try:
        assert OutboxRelay([cases], Outbox(first), grace=timedelta(minutes=1)).sweep() == 1
    finally:
        first.close()
    assert seen_by_other == [0]  # the entry was claimed: the other relay left it
    assert event_ids(observer.events(1)) == [event.id]
    assert not cases.get(stored["_id"])[OUTBOX]


def test_a_claim_left_by_a_dead_relay_is_taken_again_after_its_lease(cases, publisher, observer, district):
    event = returned_event(district, "R-2")
    stored = aged(add_messages(new_case(district), [event]), timedelta(minutes=10))
    claimed = cases.insert({**stored, OUTBOX: [{**stored[OUTBOX][0], CLAIMED_AT: datetime.now(UTC)}]})
    relay = OutboxRelay([cases], Outbox(publisher), grace=timedelta(minutes=1), lease=timedelta(minutes=2))
    assert relay.sweep() == 0  # claimed just now: another relay is publishing it
    cases.update_fields(claimed["_id"], claimed["version"], {
        OUTBOX: [{**claimed[OUTBOX][0], CLAIMED_AT: datetime.now(UTC) - timedelta(minutes=3)}]})
    assert relay.sweep() == 1  # that relay died: its lease ended
    assert event_ids(observer.events(1)) == [event.id]
    assert not cases.get(claimed["_id"])[OUTBOX]


def test_a_relay_that_cannot_publish_releases_its_claim(cases, vhost_uri, observer, district):
    event = returned_event(district, "R-3")
    stored = cases.insert(aged(add_messages(new_case(district), [event]), timedelta(minutes=10)))
    broken = Publisher(f"amqp://guest:guest@127.0.0.1:{infra.free_port()}/")
    try:
        assert OutboxRelay([cases], Outbox(broken), grace=timedelta(minutes=1)).sweep() == 0
    finally:
        broken.close()
    [entry] = cases.get(stored["_id"])[OUTBOX]
    assert entry["id"] == event.id and CLAIMED_AT not in entry
    good = Publisher(vhost_uri)
    try:  # the next sweep takes it at once, not after a lease
        assert OutboxRelay([cases], Outbox(good), grace=timedelta(minutes=1)).sweep() == 1
    finally:
        good.close()
    assert event_ids(observer.events(1)) == [event.id]


class FailingAfter(Publisher):
    def __init__(self, uri: str, good: int):
        super().__init__(uri)
        self._left = good

    def publish(self, message: OutgoingMessage) -> None:
        if self._left == 0:
            raise ConnectionError("the broker went away")
        self._left -= 1
        super().publish(message)


def test_a_flush_that_fails_halfway_removes_what_it_published(cases, vhost_uri, publisher, observer, district):
    first, second = received_event(district, "H-1"), returned_event(district, "H-1")
    stored = cases.insert(add_messages(new_case(district), [first, second]))
    failing = FailingAfter(vhost_uri, good=1)
    try:
        assert Outbox(failing).flush(cases, stored, [first.id, second.id]) is False
    finally:
        failing.close()
    assert event_ids(observer.events(1)) == [first.id]
    assert ids_of(cases.get(stored["_id"])[OUTBOX]) == [second.id]  # published ones are not left to repeat
    assert OutboxRelay([cases], Outbox(publisher), grace=timedelta(0)).sweep() == 1
    assert event_ids(observer.events(1)) == [second.id]
