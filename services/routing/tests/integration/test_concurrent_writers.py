"""Concurrent writers of one workflow instance publish every event exactly once (DESIGN rule 1:
"concurrent writers of one aggregate never publish the same event twice; only a crash may").

Each scenario hands a dossier from one writer to the next the moment the previous write is
visible, so the next writer reads the instance while the previous writer's outbox entries are
still pending (published but not yet cleared, or not yet published), and writes them back with
its own: an official's Act right after signing's report (and signing's report right after an
official's approval), two officials one after the other, the SLA sweep beside an official. The
outbox relay sweeps all along, as the worker's timer does.

What must arrive is taken from the store, not from the code under test: every outbox entry of
every committed write (a recording wrapper around the instances' collection). It is counted
where it lands, by clients of the broker alone: an independent subscriber (EventCollector, its own
queue bound to ``motcua.events``), the replay stream ``motcua.events.stream`` read from its first
offset, and signing's work queue. Real RabbitMQ (a private vhost per test), both store backends.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pika
import pytest
from kombu import Connection
from motcua_dev.harness import EventCollector, private_vhost
from motcua_dev.testing import FakeSealer, work_data
from motcua_dev.testing import SettableClock as Clock

from motcua.errors import Conflict
from motcua.messaging import topology
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import HEADER_PREFIX, build_work
from motcua.messaging.outbox import Outbox, OutboxRelay
from motcua.messaging.publisher import Publisher
from motcua.store import Store
from motcua.unit_of_work import UnitsOfWork
from motcua.work.v1 import work_pb2
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.drafts import ApologyForms, DraftDocuments, StopNotices, SupplementForms
from routing.adapters.instances import INSTANCES
from routing.application.officials import Officials
from routing.application.repository import Instances, StoredInstance
from routing.application.sweeps import SlaSweep
from routing.domain.actions import Official
from routing.domain.process import ProcessDefinition
from routing.entrypoints.messages import dispatcher

SEALER = FakeSealer()  # forms sealed for real in tests/integration/test_forms_sealed.py

pytestmark = pytest.mark.integration

CALENDAR = vietnam_calendar()
DISTRICT = "bim-son"
UNIT_ID = "000.00.06.H56"
PROCESS = {
    "steps": [{"role": role, "unit": DISTRICT, "unit_id": UNIT_ID, "level": "district", "share": share}
              for role, share in (("receive", 0.1), ("review", 0.5), ("sign", 0.2), ("seal", 0.1), ("return", 0.1))],
    "time_type": "working_days", "duration_hours": 24, "supplement_policy": "pause",
}
MONDAY_9 = dt.datetime(2027, 3, 1, 9, 0, tzinfo=VN_TZ)
DESK = Official("mc-bim-son", DISTRICT, frozenset({"receive", "return"}))
REVIEWER = Official("cv-bim-son", DISTRICT, frozenset({"review"}))
SIGNER = Official("ct-bim-son", DISTRICT, frozenset({"sign"}))
ROUNDS = 12  # dossiers per scenario: each hands over two or three times
GRACE = dt.timedelta(seconds=1)  # a short grace: writers race the relay here on purpose


class CommittedMessages:
    """The instances' collection, recording the outbox entries of every committed write (the only
    writes that add entries): what the broker's clients must each see exactly once. ``overlaps``
    counts writes that carried another write's pending entries, i.e. the races this test is for."""

    def __init__(self, collection: Any):
        self._collection = collection
        self._lock = threading.Lock()
        self.events: set[str] = set()
        self.work: set[str] = set()
        self.overlaps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    def insert(self, doc: dict) -> dict:
        return self._record(self._collection.insert(doc))

    def replace(self, doc: dict, expected_version: int) -> dict:
        return self._record(self._collection.replace(doc, expected_version))

    def _record(self, stored: dict) -> dict:
        entries = stored.get("outbox") or []
        with self._lock:
            if any(e["id"] in self.events or e["id"] in self.work for e in entries):
                self.overlaps += 1
            for entry in entries:
                kind = self.events if entry["exchange"] == topology.EVENTS_EXCHANGE.name else self.work
                kind.add(entry["id"])
        return stored


class StreamReader:
    """The replay stream, read from its first offset by a plain pika consumer."""

    def __init__(self, uri: str):
        with Connection(uri) as connection:  # the stream as the platform declares it (bound to every event)
            topology.event_stream()(connection.default_channel).declare()
        self._uri = uri

    def ids(self, expected: set[str], timeout: float = 30, settle: float = 1.0) -> list[str]:
        connection = pika.BlockingConnection(pika.URLParameters(self._uri))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=500)
            seen: list[str] = []
            deadline = time.monotonic() + timeout
            quiet_until = None
            for method, properties, _body in channel.consume(topology.EVENT_STREAM, inactivity_timeout=0.2,
                                                             arguments={"x-stream-offset": "first"}):
                now = time.monotonic()
                if method is not None:
                    seen.append(_text((properties.headers or {}).get(f"{HEADER_PREFIX}id")))
                    channel.basic_ack(method.delivery_tag)
                    quiet_until = None
                    continue
                if expected <= set(seen):
                    quiet_until = quiet_until or now + settle  # then a little longer, for any extra copy
                    if now >= quiet_until:
                        break
                elif now >= deadline:
                    break
            channel.cancel()
            return seen
        finally:
            connection.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def work_ids(uri: str) -> list[str]:
    """The work the writes sent: drafts to signing's queue, form 05 of a return to routing's own."""
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        ids = []
        for service in ("signing", "routing"):
            queue = topology.queue_name(service, DISTRICT)
            channel.queue_declare(queue, durable=True)
            while True:
                method, properties, _body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
                ids.append(properties.message_id)
        return ids
    finally:
        connection.close()


@dataclass
class Race:
    instances: Instances
    officials: Officials
    work: Callable[[Delivery], None]
    sweep: SlaSweep
    clock: Clock
    committed: CommittedMessages
    collection: Any  # the store's own, not the recording wrapper
    events: EventCollector
    stream: StreamReader
    uri: str
    relay_stop: threading.Event = field(default_factory=threading.Event)
    failures: list[BaseException] = field(default_factory=list)

    def open(self, n: int, area: str = DISTRICT) -> str:
        due = ProcessDefinition.from_dict(PROCESS).due_from(MONDAY_9, CALENDAR)
        self.work(delivered(build_work(
            service="routing", area=area, type="routing.route_dossier", id=f"route:d{n}",
            data=work_data(work_pb2.RouteDossier, {
                  "dossier_id": f"d{n}", "code": f"{UNIT_ID}-{MONDAY_9:%y%m%d}-{n:04d}", "procedure_code": "1.004616",
                  "receiving_unit": area, "area": area, "unit_id": UNIT_ID, "received_at": MONDAY_9.isoformat(),
                  "due_at": due.isoformat(), "channel": "online", "process": PROCESS}))))
        return self.instances.get(dossier_id=f"d{n}").instance.code

    def act(self, code: str, official: Official, action: str, request_id: str, **fields_: Any) -> None:
        """An official's client: ABORTED (someone acted first) → reload and try again."""
        for _ in range(50):
            try:
                self.officials.act(request_id, code, official, action, fields_=fields_ or None)
                return
            except Conflict:
                continue
        raise AssertionError(f"{official.id} could not {action} {code}")

    def report_signed(self, n: int, code: str) -> None:
        """Signing's report, as the routing worker receives it."""
        signed = {"key": f"signing/d{n}/bb", "sha256": "bb", "size": 9, "media_type": "application/pdf",
                  "name": "ket-qua.pdf"}
        self.work(delivered(build_work(
            service="routing", area=DISTRICT, type="routing.signing_completed", id=f"signed:d{n}:sign:1",
            data=work_data(work_pb2.SigningCompleted, {
                  "signing_request_id": f"d{n}:sign:1", "dossier_id": f"d{n}", "code": code,
                  "receiving_unit": DISTRICT, "area": DISTRICT,
                  "signed": signed, "signers": ["ct-bim-son", "UBND thị xã Bỉm Sơn"]}))))

    def as_soon_as(self, dossier_id: str, ready: Callable[[StoredInstance], bool], then: Callable[[], None]
                   ) -> Callable[[], None]:
        """A writer that acts the moment the write it waits for is visible (polling the store)."""
        def run() -> None:
            deadline = time.monotonic() + 30
            while not ready(self.instances.get(dossier_id=dossier_id)):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{dossier_id}: the write awaited never came")
            then()
        return run

    def together(self, *writers: Callable[[], None]) -> None:
        def guarded(writer: Callable[[], None]) -> None:
            try:
                writer()
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                self.failures.append(exc)
        threads = [threading.Thread(target=guarded, args=(w,)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not self.failures, self.failures

    def relay_all_along(self, outbox: Outbox) -> threading.Thread:
        relay = OutboxRelay([self.collection], outbox)  # the outbox's grace

        def run() -> None:
            while not self.relay_stop.wait(0.1):
                relay.sweep()
        thread = threading.Thread(target=run, name="outbox-relay", daemon=True)
        thread.start()
        return thread

    def assert_each_message_published_once(self) -> None:
        expected = set(self.committed.events)
        assert expected, "nothing was written"
        assert self.committed.overlaps > 0, "no write ever met another's pending entries: nothing was tested"
        outboxes_empty = lambda: all(not d.get("outbox") for d in self.collection.find({}))  # noqa: E731
        deadline = time.monotonic() + 30
        while not (outboxes_empty() and expected <= {e.id for e in self.events.seen()}):
            assert time.monotonic() < deadline, "events still pending or missing after 30 s"
            time.sleep(0.1)
        time.sleep(1.0)  # a copy published late would arrive by now

        subscriber = Counter(e.id for e in self.events.seen())
        assert {i: n for i, n in subscriber.items() if n > 1} == {}, "published twice (subscriber)"
        assert set(subscriber) == expected
        stream = Counter(self.stream.ids(expected))
        assert {i: n for i, n in stream.items() if n > 1} == {}, "published twice (stream)"
        assert set(stream) == expected
        work = Counter(work_ids(self.uri))
        assert {i: n for i, n in work.items() if n > 1} == {}, "sent twice (signing's or routing's queue)"
        assert set(work) == self.committed.work


def delivered(message) -> Delivery:
    outgoing = message.to_outgoing()
    return Delivery(body=outgoing.body, headers=outgoing.headers, content_type=outgoing.content_type,
                    queue=topology.queue_name("routing", DISTRICT))


@pytest.fixture
def race(store: Store, amqp_uri: str, object_store) -> Iterator[Race]:
    with private_vhost(amqp_uri, prefix="routing-race") as uri:
        stream = StreamReader(uri)
        events = EventCollector(uri).start()
        publisher = Publisher(uri)
        outbox = Outbox(publisher, grace=GRACE)  # writers publish within 0.5 s, the relay after 1 s
        clock = Clock(MONDAY_9)
        instances = Instances(UnitsOfWork(store, outbox), CALENDAR, clock, soon_hours=0, records=INSTANCES)
        collection = instances.collection
        committed = CommittedMessages(collection)
        instances.collection = committed
        sweep = SlaSweep(instances, ApologyForms(object_store, SEALER), lease=dt.timedelta(minutes=2),
                         stop_notice=StopNotices(object_store, SEALER))
        race = Race(instances, Officials(instances, DraftDocuments(object_store), StopNotices(object_store, SEALER),
                          SupplementForms(object_store, SEALER)),
                    dispatcher(instances), sweep, clock, committed, collection, events, stream, uri)
        relay = race.relay_all_along(outbox)
        try:
            yield race
        finally:
            race.relay_stop.set()
            relay.join(10)
            events.stop()
            publisher.close()


def _acted(action: str, times: int = 1) -> Callable[[StoredInstance], bool]:
    return lambda stored: [row.action for row in stored.instance.timeline].count(action) >= times


def test_official_and_signing_report_on_one_instance(race: Race):
    """The signer approves and signing's report is applied the moment the approval is stored; the
    desk returns the result the moment the report is stored (routing's return_result right after
    the worker's act_as_system)."""
    for n in range(1, ROUNDS + 1):
        code = race.open(n)
        race.act(code, DESK, "complete", f"r{n}-1")
        race.act(code, REVIEWER, "complete", f"r{n}-2")
        race.together(
            lambda code=code, n=n: race.act(code, SIGNER, "approve", f"r{n}-3"),
            race.as_soon_as(f"d{n}", _acted("approve"), lambda code=code, n=n: race.report_signed(n, code)),
            race.as_soon_as(f"d{n}", lambda s: int(s.instance.status) == 9,
                            lambda code=code, n=n: race.act(code, DESK, "return_result", f"r{n}-4",
                                                            channel="desk", receiver="Công dân")),
        )
        assert int(race.instances.get(dossier_id=f"d{n}").instance.status) == 10
    race.assert_each_message_published_once()


def test_two_officials_one_after_the_other_on_one_instance(race: Race):
    """The desk completes the receive step, the reviewer completes the review the moment it is
    theirs, and the signer approves the moment the review is done."""
    for n in range(1, ROUNDS + 1):
        code = race.open(n)
        race.together(
            lambda code=code, n=n: race.act(code, DESK, "complete", f"r{n}-1"),
            race.as_soon_as(f"d{n}", _acted("complete", 1),
                            lambda code=code, n=n: race.act(code, REVIEWER, "complete", f"r{n}-2")),
            race.as_soon_as(f"d{n}", _acted("complete", 2),
                            lambda code=code, n=n: race.act(code, SIGNER, "approve", f"r{n}-3")),
        )
        assert _acted("approve")(race.instances.get(dossier_id=f"d{n}"))
    race.assert_each_message_published_once()


def test_sla_sweep_beside_an_official(race: Race):
    """Late dossiers: the sweep alerts and apologizes while the desk completes the receive step.
    The desk acts the moment the sweep's write is stored; or (the desk acting in time) the sweep
    runs a week later the moment the desk's write is stored, claims the dossier with the desk's
    entries pending, and its write is stale by the time the desk has removed them (the sweep looks
    again when its lease ends). Each dossier lies in an area of its own, so that one sweep looks at
    that dossier alone."""
    areas = [f"area-{n}" for n in range(1, ROUNDS + 1)]
    codes = [race.open(n, area=area) for n, area in enumerate(areas, start=1)]
    late = dt.datetime(2027, 3, 10, 9, 0, tzinfo=VN_TZ)  # every deadline has passed
    reports: list = []

    def sweep(area: str) -> None:
        race.clock.now = late
        reports.append(race.sweep.sweep([area]))

    for n, (area, code) in enumerate(zip(areas, codes, strict=True), start=1):
        complete = lambda code=code, n=n: race.act(code, DESK, "complete", f"r{n}-1")  # noqa: E731
        if n % 2:
            race.clock.now = late
            race.together(lambda area=area: sweep(area),
                          race.as_soon_as(f"d{n}", lambda s: bool(s.instance.apologies), complete))
        else:
            race.clock.now = MONDAY_9 + dt.timedelta(hours=1)
            race.together(complete, race.as_soon_as(f"d{n}", _acted("complete"), lambda area=area: sweep(area)))
    assert [r.claimed for r in reports] == [1] * ROUNDS
    assert [r.written for r in reports[::2]] == [1] * (ROUNDS // 2)  # the desk wrote over these
    race.assert_each_message_published_once()
