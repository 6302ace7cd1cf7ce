"""Per-district work queues: a district's routing worker consumes only its own queue, so a flood in
one district does not hold up another.

Two routing worker processes run as the platform starts them (``worker_spec`` with one district
each), one for Bỉm Sơn (A) and one for Bá Thước (B), on a private RabbitMQ vhost and SeaweedFS and
one shared data directory — so both also write the same routing SQLite file and meet at its write
lock, which is part of what B's latency under A's flood shows. The test plays intake itself: an
independent pika publisher puts ``routing.route_dossier`` work messages, with the building-permit
process and due date resolved by intake's own domain from its catalog, on ``motcua.work`` under
the routing keys ``routing.<district>``; an independent consumer bound to ``motcua.events`` sees
each ``dossier.assigned`` (routing's first step: the instance is open, its first step active).

* Phase 1, unloaded: PER_PHASE B dossiers, one every PACE_S, each timed from its publish to its
  ``dossier.assigned``.
* Phase 2, flooded: BACKLOG dossiers for A in one burst (checked to be sitting in
  ``routing.bim-son``), then PER_PHASE fresh B dossiers timed the same way while A's worker works
  through its backlog.

Both latency distributions are printed; timing is not asserted (the machine is shared and noisy).
Asserted: every dossier, A's and B's, is assigned exactly once (distinct event ids) and opened
once in routing's store; when B's last dossier is assigned, at least half of A's backlog is still
not (B did not queue behind it); and each worker's log names only its own district's dossiers.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pika
import pytest
from motcua_dev.devstack import Stack
from motcua_dev.harness import EventCollector, private_vhost
from motcua_dev.platform import worker_spec
from motcua_dev.testing import S3Endpoint, work_data

from motcua.messaging import topology
from motcua.messaging.envelope import WorkMessage, build_work
from motcua.work.v1 import work_pb2
from motcua.worktime import vietnam_calendar

pytestmark = pytest.mark.e2e

A, B = "bim-son", "ba-thuoc"
BACKLOG = 2_000  # A's flood
PER_PHASE = 50  # B's dossiers timed in each phase
PACE_S = 0.02  # B's dossiers arrive one at a time, so their latency is the worker's, not their own queue's
PROCEDURE = "1.004616"  # building permit, district level
ASSIGNED = "vn.motcua.dossier.assigned.v1"


# -- what intake would send ---------------------------------------------------------------------


class RouteDossiers:
    """``routing.route_dossier`` messages as intake builds them (application.events.route_dossier),
    with the process definition and due date intake's own domain derives from its catalog."""

    def __init__(self) -> None:
        from intake.adapters.catalog_file import load_catalog
        from intake.config import IntakeSettings

        self.catalog = load_catalog(IntakeSettings.load().catalog_file)
        self.procedure = self.catalog.procedure(PROCEDURE)
        self.calendar = vietnam_calendar()
        self.received_at = datetime.now(UTC).replace(microsecond=0)

    def batch(self, district: str, first: int, count: int) -> dict[str, WorkMessage]:
        """Code → message of the dossiers numbered first.. (built before any is timed or sent:
        resolving the process costs more than publishing it)."""
        return dict(self.message(district, n) for n in range(first, first + count))

    def message(self, district: str, n: int) -> tuple[str, WorkMessage]:
        """The n-th dossier of ``district`` (1..9999, the daily sequence): its code and message."""
        from intake.domain.dossier import dossier_code
        from intake.domain.lifecycle import Channel, due_date
        from intake.domain.process import process_definition

        unit = self.catalog.unit(district)
        code = dossier_code(unit.unit_id, self.received_at, n)
        dossier_id = str(uuid.uuid4())
        body = {"dossier_id": dossier_id, "code": code, "procedure_code": PROCEDURE,
                "procedure_version": self.procedure.version, "receiving_unit": district,
                "area": self.catalog.area(district).slug, "unit_id": unit.unit_id,
                "received_at": self.received_at.isoformat(),
                "due_at": due_date(self.calendar, self.procedure, self.received_at, Channel.DESK).isoformat(),
                "channel": "desk",
                "process": process_definition(self.catalog, self.procedure, unit, online=False),
                "documents": [{"key": f"intake/{dossier_id}/don", "sha256": "00" * 32, "size": 1,
                               "media_type": "application/pdf", "name": "don-de-nghi.pdf",
                               "component": "don-de-nghi"}]}
        return code, build_work(service="routing", area=district, type="routing.route_dossier",
                                id=f"route:{dossier_id}", data=work_data(work_pb2.RouteDossier, body))


class WorkPublisher:
    """An independent AMQP client (pika) that puts work messages on ``motcua.work`` and reads
    queue depths; used from the test's thread only."""

    def __init__(self, uri: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.confirmed = self.connection.channel()
        self.confirmed.confirm_delivery()
        # The backlog goes on a channel without confirms: waiting for 2,000 confirms one by one
        # takes seconds, during which A's worker would already drain a good part of its "backlog".
        self.burst = self.connection.channel()
        self.returned: list[str] = []
        self.burst.add_on_return_callback(lambda _ch, _method, props, _body: self.returned.append(props.message_id))

    def publish(self, message: WorkMessage) -> float:
        """Publish and wait for the broker's confirm; returns when it was sent (monotonic)."""
        sent = time.monotonic()
        self._send(self.confirmed, message)
        return sent

    def publish_backlog(self, messages: list[WorkMessage]) -> int:
        """Publish without waiting for each confirm; returns the depth of their queue just after.
        The passive declare is answered only once the broker has routed every earlier publish of
        the channel (AMQP keeps a channel's methods in order), so that depth is after all of them."""
        for message in messages:
            self._send(self.burst, message)
        depth = self.burst.queue_declare(messages[0].queue, passive=True).method.message_count
        assert not self.returned, f"{len(self.returned)} messages were unroutable"
        return depth

    @staticmethod
    def _send(channel, message: WorkMessage) -> None:
        outgoing = message.to_outgoing()
        # mandatory: an unbound routing key fails loudly instead of the message vanishing
        channel.basic_publish(outgoing.exchange, outgoing.routing_key, outgoing.body, mandatory=True,
                              properties=pika.BasicProperties(
                                  content_type=outgoing.content_type, content_encoding="binary",
                                  headers=dict(outgoing.headers), message_id=outgoing.id,
                                  delivery_mode=pika.DeliveryMode.Persistent))

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those a consumer holds unacknowledged)."""
        return self.confirmed.queue_declare(queue, passive=True).method.message_count

    def sleep(self, seconds: float) -> None:
        self.connection.sleep(seconds)  # keeps serving the connection (heartbeats) meanwhile

    def close(self) -> None:
        self.connection.close()


# -- what an independent subscriber sees ---------------------------------------------------------


class AssignedWatch:
    """The harness's independent subscriber, bound to every event of B and to A's
    ``dossier.assigned``, read for the ``dossier.assigned`` events and their arrival times."""

    def __init__(self, uri: str):
        self.collector = EventCollector(uri, bindings=(f"{B}.#", f"{A}.dossier.assigned"))

    def __enter__(self) -> AssignedWatch:
        self.collector.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.collector.stop()

    def wait_for(self, codes: set[str], timeout: float) -> bool:
        return self.collector.wait_until(
            lambda events: codes <= {e.subject for e in events if e.type == ASSIGNED}, timeout)

    def ids_by_code(self) -> dict[str, set[str]]:
        """Code → distinct ids of its dossier.assigned events (a redelivered copy counts once)."""
        ids: dict[str, set[str]] = defaultdict(set)
        for e in self.collector.seen(ASSIGNED):
            ids[e.subject].add(e.id)
        return ids

    def first_at(self) -> dict[str, float]:
        first: dict[str, float] = {}
        for e in self.collector.seen(ASSIGNED):
            first.setdefault(e.subject, e.at)
        return first

    def opened(self, district: str, until: float = float("inf")) -> int:
        """How many dossiers of ``district`` had been assigned by ``until`` (monotonic)."""
        return len({e.subject for e in self.collector.seen(ASSIGNED) if e.area == district and e.at <= until})


# -- the two workers -------------------------------------------------------------------------------


@dataclass
class Workers:
    uri: str
    stack: Stack
    data_dir: Path


@pytest.fixture
def workers(tmp_path: Path, amqp_uri: str, s3_endpoint: S3Endpoint) -> Iterator[Workers]:
    """A routing worker per district, as the platform starts them (worker_spec), on one data dir."""
    with private_vhost(amqp_uri) as uri:
        data_dir = tmp_path / "data"
        env = {"MOTCUA_AMQP_URI": uri, "MOTCUA_DATA_DIR": str(data_dir), "MOTCUA_RETRY_DELAYS_MS": "200,1000,3000",
               "MOTCUA_OUTBOX_GRACE_S": "1",
               # as running_platform: no due-soon events, whatever the hour the test runs at
               "MOTCUA_SLA_DUE_SOON_HOURS": "0", **s3_endpoint.env(f"e2e-{uuid.uuid4().hex[:10]}")}
        specs = [worker_spec("routing", env, areas=[d], name=f"routing-worker-{d}") for d in (A, B)]
        with Stack(specs, tmp_path / "logs") as stack:
            stack.wait_ready(timeout=120)
            yield Workers(uri, stack, data_dir)


# -- the test --------------------------------------------------------------------------------------


def test_a_flooded_district_does_not_hold_up_another(workers: Workers):
    messages = RouteDossiers()
    unloaded_b, flooded_b = messages.batch(B, 1, PER_PHASE), messages.batch(B, PER_PHASE + 1, PER_PHASE)
    backlog = messages.batch(A, 1, BACKLOG)
    queue_a = topology.queue_name("routing", A)
    with AssignedWatch(workers.uri) as watch:
        publisher = WorkPublisher(workers.uri)
        try:
            unloaded = timed_phase(publisher, watch, unloaded_b)

            started = time.monotonic()
            backlog_at_start = publisher.publish_backlog(list(backlog.values()))
            published_in = time.monotonic() - started
            # The flood must really be waiting in A's queue while B's dossiers go through.
            assert backlog_at_start >= BACKLOG // 2, f"only {backlog_at_start} of {BACKLOG} A messages queued"

            flooded = timed_phase(publisher, watch, flooded_b)
            last_b = max(watch.first_at()[code] for code in flooded)
            a_opened_by_then = watch.opened(A, until=last_b)
            queued_after_b = publisher.depth(queue_a)

            drain_started = time.monotonic()
            assert wait_serving(publisher, lambda: watch.wait_for(set(backlog), timeout=1), timeout=240), \
                f"{watch.opened(A)} of {BACKLOG} A dossiers assigned\n{tails(workers)}"
            drained_in = time.monotonic() - drain_started
            publisher.sleep(2)  # anything assigned twice (a redelivery) would have arrived by now
        finally:
            publisher.close()

    print(f"\nB unloaded: {summary(unloaded)}"
          f"\nB with A's backlog: {summary(flooded)}"
          f"\nA: {BACKLOG} published in {published_in:.2f}s, {backlog_at_start} in {queue_a} when B started; "
          f"when B's last was assigned {a_opened_by_then} A dossiers were ({BACKLOG - a_opened_by_then} not yet), "
          f"{queued_after_b} still queued just after; the rest drained {drained_in:.1f}s later")

    ids = watch.ids_by_code()
    for code in [*unloaded, *flooded, *backlog]:
        assert len(ids[code]) == 1, (code, ids[code])
    assert BACKLOG - a_opened_by_then >= BACKLOG // 2, \
        f"B finished only when {a_opened_by_then} of {BACKLOG} A dossiers were through"
    assert opened_by_district(workers) == {f"routing-worker-{A}": {A: BACKLOG},
                                           f"routing-worker-{B}": {B: 2 * PER_PHASE}}
    assert instances_by_district(workers.data_dir) == {A: BACKLOG, B: 2 * PER_PHASE}


def timed_phase(publisher: WorkPublisher, watch: AssignedWatch, batch: dict[str, WorkMessage]) -> dict[str, float]:
    """Send B's dossiers one every PACE_S; code → seconds from its publish to its dossier.assigned."""
    sent: dict[str, float] = {}
    for code, message in batch.items():
        sent[code] = publisher.publish(message)
        publisher.sleep(PACE_S)
    assert wait_serving(publisher, lambda: watch.wait_for(set(sent), timeout=1), timeout=60), \
        f"B dossiers not assigned: {sorted(set(sent) - set(watch.first_at()))[:5]}"
    first_at = watch.first_at()
    return {code: first_at[code] - at for code, at in sent.items()}


def wait_serving(publisher: WorkPublisher, done, timeout: float) -> bool:
    """Wait for ``done()`` (which itself waits a little), serving the publisher's connection meanwhile."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        publisher.sleep(0)
    return True


def summary(latencies: dict[str, float]) -> str:
    values = sorted(latencies.values())
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    p50, p95 = cuts[49], cuts[94]
    return f"{len(values)} dossiers, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms"


def opened_by_district(workers: Workers) -> dict[str, dict[str, int]]:
    """Worker → district → instances it opened, from its JSON log lines: each worker names only
    its own district's dossiers."""
    out: dict[str, dict[str, int]] = {}
    for name in workers.stack.specs:
        counts: dict[str, int] = defaultdict(int)
        for line in workers.stack.log_path(name).read_text(errors="replace").splitlines():
            if line.startswith("{") and (record := json.loads(line)).get("message") == "workflow instance opened":
                counts[record.get("area", "?")] += 1
        out[name] = dict(counts)
    return out


def instances_by_district(data_dir: Path) -> dict[str, int]:
    """Routing's own store: one instance per dossier, none lost, none doubled."""
    from motcua.store.sqlite import SqliteStore
    from routing.adapters.instances import InstanceRecord

    store = SqliteStore(data_dir / "routing.sqlite3")
    try:
        return {d: store.collection(InstanceRecord).count({"area": d}) for d in (A, B)}
    finally:
        store.close()


def tails(workers: Workers) -> str:
    return "\n".join(f"--- {name}\n{workers.stack.tail(name, 8)}" for name in workers.stack.specs)
