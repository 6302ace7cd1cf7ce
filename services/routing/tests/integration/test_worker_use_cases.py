"""Routing's worker use cases on both store backends (SQLite; MongoDB through mongomock), with the
real broker (a private vhost; an independent pika client reads what was published) and the real
S3 server: opening from intake's route_dossier, signing's report, intake's supplement and
withdrawal events, and the SLA sweep. Every message is delivered twice: nothing changes twice."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pika
import pytest
from motcua_dev.testing import FakeSealer, work_data
from motcua_dev.testing import SettableClock as Clock

from motcua.errors import Conflict
from motcua.events.v1 import events_pb2
from motcua.messaging import topology
from motcua.messaging.consuming import Delivery, MessageHandling, PermanentFailure, ProcessedMessage
from motcua.messaging.envelope import build_event, build_work
from motcua.messaging.outbox import Outbox, OutboxRelay
from motcua.messaging.publisher import Publisher
from motcua.metrics import REGISTRY
from motcua.objects import ObjectRef
from motcua.protobufs import document_ref, document_ref_dict
from motcua.store import SqliteStore, Store
from motcua.unit_of_work import UnitsOfWork
from motcua.work.v1 import work_pb2
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.drafts import ApologyForms, ControlSlips, DraftDocuments, StopNotices, SupplementForms
from routing.adapters.instances import INSTANCES, InstanceRecord
from routing.application.officials import Officials
from routing.application.repository import Instances
from routing.application.sweeps import SlaSweep, SweepReport
from routing.application.systems import NotOpenYet
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
REVIEWER = Official("cv-bim-son", DISTRICT, frozenset({"review"}))
SIGNER = Official("ct-bim-son", DISTRICT, frozenset({"sign"}))
DESK = Official("mc-bim-son", DISTRICT, frozenset({"receive", "return"}))



class Probe:
    """An independent AMQP client: a queue bound to every event, and signing's and routing's work queues."""

    def __init__(self, uri: str):
        self._connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.channel = self._connection.channel()
        self.channel.exchange_declare(topology.EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
        self.channel.exchange_declare(topology.WORK_EXCHANGE.name, exchange_type="direct", durable=True)
        self.events_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.events_queue, topology.EVENTS_EXCHANGE.name, routing_key="#")
        self.signing_queue = topology.queue_name("signing", DISTRICT)
        self.channel.queue_declare(self.signing_queue, durable=True)
        self.channel.queue_bind(self.signing_queue, topology.WORK_EXCHANGE.name, routing_key=self.signing_queue)
        self.channel.queue_purge(self.signing_queue)
        self.routing_queue = topology.queue_name("routing", DISTRICT)
        self.channel.queue_declare(self.routing_queue, durable=True)
        self.channel.queue_bind(self.routing_queue, topology.WORK_EXCHANGE.name, routing_key=self.routing_queue)
        self.channel.queue_purge(self.routing_queue)

    def drain(self, queue: str) -> list[tuple[dict, bytes]]:
        out = []
        while True:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(({k: (v.decode() if isinstance(v, bytes) else v) for k, v in (properties.headers or {}).items()},
                        body))

    def event_types(self) -> list[str]:
        return [h["cloudEvents:type"].removeprefix("vn.motcua.").removesuffix(".v1")
                for h, _ in self.drain(self.events_queue)]

    def close(self) -> None:
        self._connection.close()


@dataclass
class Env:
    instances: Instances
    officials: Officials
    work: Callable[[Delivery], None]
    sweep: SlaSweep
    clock: Clock
    probe: Probe
    publisher: Publisher


@pytest.fixture
def env(store: Store, vhost_uri: str, object_store) -> Iterator[Env]:
    publisher = Publisher(vhost_uri)
    clock = Clock(MONDAY_9)
    instances = Instances(UnitsOfWork(store, Outbox(publisher)), CALENDAR, clock, soon_hours=0, records=INSTANCES)
    probe = Probe(vhost_uri)
    try:
        yield Env(instances, Officials(instances, DraftDocuments(object_store), StopNotices(object_store, SEALER),
                          SupplementForms(object_store, SEALER)),
                  dispatcher(instances, ControlSlips(object_store, SEALER)),
                  SlaSweep(instances, ApologyForms(object_store, SEALER), lease=dt.timedelta(minutes=2),
                           stop_notice=StopNotices(object_store, SEALER)), clock, probe, publisher)
    finally:
        probe.close()
        publisher.close()


def delivered(message) -> Delivery:
    outgoing = message.to_outgoing()
    return Delivery(body=outgoing.body, headers=outgoing.headers, content_type=outgoing.content_type,
                    queue=topology.queue_name("routing", DISTRICT))


def route_dossier(n: int, received_at: dt.datetime = MONDAY_9):
    dossier_id = f"d{n}"
    due = ProcessDefinition.from_dict(PROCESS).due_from(received_at, CALENDAR)
    return build_work(service="routing", area=DISTRICT, type="routing.route_dossier", id=f"route:{dossier_id}",
                      data=work_data(work_pb2.RouteDossier, {
                            "dossier_id": dossier_id, "code": f"{UNIT_ID}-{received_at:%y%m%d}-{n:04d}",
                            "procedure_code": "1.004616", "receiving_unit": DISTRICT, "area": DISTRICT,
                            "unit_id": UNIT_ID,
                            "received_at": received_at.isoformat(), "due_at": due.isoformat(), "channel": "online",
                            "process": PROCESS, "documents": [{"key": "intake/d/aa", "sha256": "aa", "size": 1,
                                                               "media_type": "application/pdf", "name": "don.pdf"}]}))


def test_route_dossier_twice_opens_one_instance(env: Env):
    message = route_dossier(1)
    env.work(delivered(message))
    env.work(delivered(message))
    stored = env.instances.get(dossier_id="d1")
    assert (stored.instance.channel, stored.instance.area, len(stored.instance.documents)) == ("online", DISTRICT, 1)
    assert env.probe.event_types() == ["dossier.assigned"]


def test_route_dossiers_processed_record_rides_in_the_write_that_opens_its_instance(env: Env, store: Store):
    """Handled as the worker handles it (the inbox: MessageHandling), route_dossier costs the commits
    of its own write and no more: the processed-message record is stored in the same transaction,
    not in a commit of its own after the handler (the same message without the inbox writes no record)."""
    def commits() -> float:
        return REGISTRY.get_sample_value("motcua_store_commits_total",
                                         {"backend": "sqlite", "synchronous": "FULL"}) or 0.0

    processed = store.collection(ProcessedMessage)
    handling = MessageHandling("routing-worker", processed, env.publisher, [1000])
    before = commits()
    env.work(delivered(route_dossier(3)))  # the bare use case
    bare = commits() - before
    message = route_dossier(4)
    before = commits()
    assert handling.run(delivered(message), env.work) == "processed"
    inboxed = commits() - before
    assert processed.get(f"routing-worker:{message.id}") is not None
    if isinstance(store, SqliteStore):
        assert inboxed == bare >= 1
    assert handling.run(delivered(message), env.work) == "duplicate"
    assert env.probe.event_types() == ["dossier.assigned", "dossier.assigned"]


def test_approval_sends_the_draft_to_signing_whose_report_counts_once(env: Env, object_store):
    env.work(delivered(route_dossier(2)))
    code = env.instances.get(dossier_id="d2").instance.code
    env.officials.act("r1", code, DESK, "complete")
    env.officials.act("r2", code, REVIEWER, "complete")
    env.officials.act("r3", code, SIGNER, "approve")
    env.officials.act("r3", code, SIGNER, "approve")  # a retried call: the first answer, nothing sent twice

    ((headers, body),) = env.probe.drain(env.probe.signing_queue)
    assert headers["motcua-work-type"] == "signing.sign_document"
    work = work_pb2.SignDocument.FromString(body)
    assert (work.code, work.signing_request_id, work.area, work.receiving_unit) == (
        code, "d2:sign:1", DISTRICT, DISTRICT)
    draft = object_store.get(ObjectRef.from_dict(document_ref_dict(work.document)))
    assert draft.startswith(b"%PDF")  # rendered and stored before the write that refers to it
    env.probe.event_types()

    signed = {"key": "signing/d2/bb", "sha256": "bb", "size": 9, "media_type": "application/pdf", "name": "ket-qua.pdf"}
    report = build_work(service="routing", area=DISTRICT, type="routing.signing_completed", id="signed:d2:sign:1",
                        data=work_data(work_pb2.SigningCompleted, {
                            "signing_request_id": "d2:sign:1", "dossier_id": "d2", "code": code,
                            "receiving_unit": DISTRICT, "area": DISTRICT,
                            "signed": signed, "signers": ["ct-bim-son", "UBND thị xã Bỉm Sơn"]}))
    env.work(delivered(report))
    env.work(delivered(report))
    instance = env.instances.get(dossier_id="d2").instance
    assert int(instance.status) == 9 and instance.result == {**signed, "component": ""}
    assert env.probe.event_types() == ["dossier.step_completed", "dossier.step_completed", "dossier.assigned",
                                       "dossier.result_ready"]
    sealed_before = len(SEALER.calls)
    env.officials.act("r4", code, DESK, "return_result", fields_={"channel": "desk", "receiver": "Công dân"})
    returned = [b for h, b in env.probe.drain(env.probe.events_queue)
                if h["cloudEvents:type"] == "vn.motcua.dossier.returned.v1"]
    message = events_pb2.DossierReturned.FromString(returned[0])
    assert [d.name for d in message.documents] == ["don.pdf"] and message.result.sha256 == "bb"
    # Form 05 is not made inside the return: the return names it as to follow, and asks routing's
    # worker for it in the same write's outbox.
    assert (list(message.forms), list(message.forms_to_follow)) == ([], ["05"])
    assert len(SEALER.calls) == sealed_before and env.instances.get(dossier_id="d2").instance.control_slip is None
    ((headers, body),) = env.probe.drain(env.probe.routing_queue)
    assert (headers["motcua-work-type"], work_pb2.RenderForm.FromString(body).form) == ("routing.render_form", "05")

    # The worker renders, seals, stores and records it once, however often the message comes.
    render = build_work(service="routing", area=DISTRICT, type="routing.render_form", id="form-05:d2",
                        data=work_pb2.RenderForm.FromString(body))
    env.work(delivered(render))
    env.work(delivered(render))
    assert len(SEALER.calls) == sealed_before + 1 and SEALER.calls[-1] == (DISTRICT, f"Mẫu 05 {code}")
    issued = [events_pb2.FormIssued.FromString(b) for h, b in env.probe.drain(env.probe.events_queue)
              if h["cloudEvents:type"] == "vn.motcua.dossier.form_issued.v1"]
    assert [(f.form, f.code, f.receiving_unit, f.document.name) for f in issued] == [
        ("05", code, DISTRICT, "phieu-kiem-soat-05.pdf")]
    slip = env.instances.get(dossier_id="d2").instance.control_slip
    assert slip is not None and slip["sha256"] == issued[0].document.sha256
    assert object_store.get(ObjectRef.from_dict(slip)).startswith(b"%PDF")


def test_a_refused_signing_puts_the_dossier_back_at_the_sign_step_once(env: Env):
    env.work(delivered(route_dossier(5)))
    code = env.instances.get(dossier_id="d5").instance.code
    env.officials.act("r1", code, DESK, "complete")
    env.officials.act("r2", code, REVIEWER, "complete")
    env.officials.act("r3", code, SIGNER, "approve")
    ((_headers, body),) = env.probe.drain(env.probe.signing_queue)
    work = work_pb2.SignDocument.FromString(body)
    # who signs comes from the workflow: the official who approved, the issuing unit's seal
    assert (work.official_id, work.seal_unit) == (SIGNER.id, DISTRICT)
    env.probe.event_types()

    reason = f"official {SIGNER.id!r} has no enrolled personal signing key in token 'motcua-dev'"
    refused = build_work(service="routing", area=DISTRICT, type="routing.signing_failed", id="failed:d5:sign:1",
                         data=work_data(work_pb2.SigningFailed, {
                             "signing_request_id": "d5:sign:1", "dossier_id": "d5", "code": code,
                             "receiving_unit": DISTRICT, "area": DISTRICT, "reason": reason}))
    env.work(delivered(refused))
    env.work(delivered(refused))  # redelivered: applied once
    instance = env.instances.get(dossier_id="d5").instance
    assert instance.current.role.value == "sign" and int(instance.status) == 4
    assert instance.signings[0].state == "failed" and instance.signings[0].reason == reason
    failed = [b for h, b in env.probe.drain(env.probe.events_queue)
              if h["cloudEvents:type"] == "vn.motcua.dossier.signing_failed.v1"]
    assert len(failed) == 1
    event = events_pb2.SigningFailed.FromString(failed[0])
    assert (event.reason, event.official_id, event.code) == (reason, SIGNER.id, code)
    # the official may approve again (a new signing request)
    env.officials.act("r5", code, SIGNER, "approve")
    ((_headers, body),) = env.probe.drain(env.probe.signing_queue)
    assert work_pb2.SignDocument.FromString(body).signing_request_id == "d5:sign:2"


def _intake_event(name: str, data, code: str):
    return build_event(name=name, data=data, source="/motcua/intake", subject=code, area=DISTRICT)


def test_intake_supplement_and_withdrawal_events_apply_once(env: Env):
    env.work(delivered(route_dossier(3)))
    code = env.instances.get(dossier_id="d3").instance.code
    env.officials.act("r1", code, DESK, "complete")
    env.officials.act("r2", code, REVIEWER, "request_supplement",
                      fields_={"reason": "thiếu bản vẽ", "deadline": dt.datetime(2027, 3, 5, 17, 0, tzinfo=VN_TZ)})
    env.clock.now = MONDAY_9 + dt.timedelta(hours=2)  # 11:00: two working hours waited
    new_document = {"key": "intake/d3/cc", "sha256": "cc", "size": 4, "media_type": "application/pdf",
                    "name": "ban-ve.pdf"}
    supplemented = _intake_event("dossier.supplemented", events_pb2.DossierSupplemented(
        dossier_id="d3", code=code, receiving_unit=DISTRICT, area=DISTRICT,
        documents=[document_ref(new_document)]), code)
    env.work(delivered(supplemented))
    env.work(delivered(supplemented))
    instance = env.instances.get(dossier_id="d3").instance
    assert int(instance.status) == 4 and [d["name"] for d in instance.documents] == ["don.pdf", "ban-ve.pdf"]
    # pause: 24 h from Mon 09:00 (Mon 6 h, Tue 8, Wed 8, Thu 2) was Thu 4/3 09:00; waited 09:00–11:00
    # Monday, two working hours → Thu 4/3 11:00
    assert instance.due_at == dt.datetime(2027, 3, 4, 11, 0, tzinfo=VN_TZ)
    assert instance.previous_due_at == [dt.datetime(2027, 3, 4, 9, 0, tzinfo=VN_TZ)]
    assert [r.action for r in instance.timeline].count("supplement_received") == 1

    withdrawn = _intake_event("dossier.withdrawn", events_pb2.DossierWithdrawn(
        dossier_id="d3", code=code, receiving_unit=DISTRICT, area=DISTRICT, reason="không cần nữa"), code)
    env.work(delivered(withdrawn))
    env.work(delivered(withdrawn))
    assert int(env.instances.get(dossier_id="d3").instance.status) == 7
    # A report that no longer fits (a supplement for a withdrawn dossier) is parked, not dropped.
    late = _intake_event("dossier.supplemented", events_pb2.DossierSupplemented(
        dossier_id="d3", code=code, receiving_unit=DISTRICT, area=DISTRICT), code)
    with pytest.raises(PermanentFailure, match="status 7"):
        env.work(delivered(late))
    # One about a dossier not opened yet is retried (its route_dossier may still be on its way).
    with pytest.raises(NotOpenYet):
        env.work(delivered(_intake_event("dossier.withdrawn", events_pb2.DossierWithdrawn(
            dossier_id="d404", code="x", receiving_unit=DISTRICT, area=DISTRICT), "x")))


def test_the_sweep_alerts_and_apologizes_once_and_replicas_never_act_twice(env: Env, store: Store):
    for n in range(10, 30):
        env.work(delivered(route_dossier(n)))
    env.probe.event_types()
    env.clock.now = dt.datetime(2027, 3, 10, 9, 0, tzinfo=VN_TZ)  # a week later: everything is overdue
    reports = []
    sweepers = [threading.Thread(target=lambda: reports.append(env.sweep.sweep([DISTRICT]))) for _ in range(3)]
    # Three replicas at once on SQLite. mongomock's find-and-modify (and version-checked update) is
    # a find then an update by _id, not atomic across threads as MongoDB's is: there the replicas
    # take turns, which still shows a later replica finding nothing left to claim.
    concurrent = isinstance(store, SqliteStore)
    for thread in sweepers:
        thread.start()
        if not concurrent:
            thread.join(120)
    for thread in sweepers:
        thread.join(120)
    # A replica whose write took longer than half the outbox's grace (a loaded machine) leaves its
    # events to the relay, as the worker's timer would publish them: one relay pass, now that no
    # writer is at work, so the count below holds however slow the writes were.
    OutboxRelay([store.collection(InstanceRecord)], Outbox(env.publisher), grace=dt.timedelta(0)).sweep()
    assert sum(r.claimed for r in reports) == 20 and sum(r.written for r in reports) == 20
    types = env.probe.event_types()
    assert types.count("dossier.apology_issued") == 20
    assert types.count("dossier.overdue") == 40  # the receive step and the dossier, once each
    again = env.sweep.sweep([DISTRICT])
    assert again.claimed == 0 and env.probe.event_types() == []  # next_check_at moved past now
    instance = env.instances.get(dossier_id="d10").instance
    (apology,) = instance.apologies
    assert apology.new_due_at > env.clock.now and apology.form["media_type"] == "application/pdf"


def test_a_passed_supplement_deadline_stops_the_dossier_with_a_notice(env: Env, object_store):
    env.work(delivered(route_dossier(50)))
    code = env.instances.get(dossier_id="d50").instance.code
    env.officials.act("r1", code, DESK, "complete")
    env.officials.act("r2", code, REVIEWER, "request_supplement",
                      fields_={"reason": "thiếu bản vẽ", "deadline": dt.datetime(2027, 3, 2, 17, 0, tzinfo=VN_TZ)})
    env.probe.event_types()
    env.clock.now = dt.datetime(2027, 3, 2, 17, 0, tzinfo=VN_TZ)  # the deadline itself
    assert env.sweep.sweep([DISTRICT]).written == 1
    instance = env.instances.get(dossier_id="d50").instance
    assert int(instance.status) == 8 and instance.notice["name"] == "thong-bao-dung-xu-ly.pdf"
    stopped = [b for h, b in env.probe.drain(env.probe.events_queue)
               if h["cloudEvents:type"] == "vn.motcua.dossier.stopped.v1"]
    message = events_pb2.DossierStopped.FromString(stopped[0])
    assert message.cause == "supplement_expired" and message.notice.sha256 == instance.notice["sha256"]
    assert object_store.get(ObjectRef.from_dict(instance.notice)).startswith(b"%PDF")
    assert env.sweep.sweep([DISTRICT]).claimed == 0  # closed: nothing left to look at


def test_a_stale_sweep_write_loses_to_an_official(env: Env):
    env.work(delivered(route_dossier(40)))
    code = env.instances.get(dossier_id="d40").instance.code
    env.clock.now = dt.datetime(2027, 3, 10, 9, 0, tzinfo=VN_TZ)
    collection = env.instances.collection
    claimed = collection.claim({"area": DISTRICT, "next_check_at": {"$lte": env.clock.now}},
                               {"next_check_at": env.clock.now + dt.timedelta(minutes=2)})
    assert claimed is not None
    env.officials.act("r1", code, DESK, "complete")  # the official writes between claim and write
    report = SweepReport()
    env.sweep._look_at(env.instances.loaded(claimed), report)
    assert (report.written, report.stale) == (0, 1)
    after = env.instances.get(code=code).instance
    assert after.steps[0].state == "done" and not after.apologies  # nothing of the stale sweep was kept


def test_bookkeeping_writes_never_abort_an_official(env: Env, monkeypatch):
    env.work(delivered(route_dossier(60)))
    seen = env.instances.get(dossier_id="d60")
    code = seen.instance.code
    # The outbox cleared (again) after the official loaded the dossier: the store's version moved,
    # the dossier did not — the official's expected_version still holds.
    env.instances.collection.update_fields("d60", seen.doc["version"], {"outbox": []})
    after = env.officials.act("r1", code, DESK, "complete", expected_version=seen.version)
    assert after.version == seen.version + 1

    # The same between the action's read and its write: the write is stale, the action is applied again.
    stage, calls = env.instances.stage, []

    def stage_after_a_clear(uow, stored, now, traceparent=None, changes=None):
        if not calls:
            env.instances.collection.update_fields("d60", stored.doc["version"], {"outbox": []})
        calls.append(stored.doc["version"])
        return stage(uow, stored, now, traceparent, changes)

    monkeypatch.setattr(env.instances, "stage", stage_after_a_clear)
    done = env.officials.act("r2", code, REVIEWER, "complete", expected_version=after.version)
    assert len(calls) == 2 and done.version == after.version + 1
    assert [r.action for r in done.rows].count("complete") == 2
    # whereas a real change in between is a conflict (ABORTED at the edge)
    calls.clear()

    def stage_after_an_action(uow, stored, now, traceparent=None, changes=None):
        if not calls:
            calls.append(1)
            env.officials.act("r3", code, SIGNER, "claim")
        return stage(uow, stored, now, traceparent, changes)

    monkeypatch.setattr(env.instances, "stage", stage_after_an_action)
    with pytest.raises(Conflict):
        env.officials.act("r4", code, SIGNER, "approve", expected_version=done.version)


def test_a_render_form_message_routing_cannot_serve_is_parked_with_its_reason(env: Env):
    """routing.render_form of another form than 05, without a dossier, or of a dossier not returned
    yet: a clear permanent failure (parked with the reason), nothing sealed."""
    env.work(delivered(route_dossier(40)))
    sealed_before = len(SEALER.calls)

    def render(form: str, dossier_id: str):
        return delivered(build_work(service="routing", area=DISTRICT, type="routing.render_form",
                                    id=f"form-{form}:{dossier_id}",
                                    data=work_pb2.RenderForm(dossier_id=dossier_id, form=form)))

    with pytest.raises(PermanentFailure, match="form 05 only"):
        env.work(render("03", "d40"))
    with pytest.raises(PermanentFailure, match="dossier_id"):
        env.work(render("05", ""))
    with pytest.raises(PermanentFailure):
        env.work(render("05", "d40"))  # still at its first step: there is no slip to close
    assert len(SEALER.calls) == sealed_before
    assert env.instances.get(dossier_id="d40").instance.control_slip is None
