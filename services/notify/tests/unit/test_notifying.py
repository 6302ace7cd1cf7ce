"""Notify's use cases on fake ports — in-memory store, a recording publisher, in-memory channels,
a settable clock — fed through the worker's own decoding of public events and work."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from motcua_dev.testing import MemoryObjects, SettableClock, memory_units_of_work

from motcua.events.v1 import events_pb2
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import NOTHING_TO_REMEMBER, Delivery
from motcua.messaging.envelope import build_event
from motcua.objects import ObjectRef
from motcua.protobufs import timestamp
from motcua.types.v1 import types_pb2
from motcua.work.v1 import work_pb2
from notify.adapters.records import NotificationRecord, WaitingNoticeRecord
from notify.adapters.templates import JinjaRenderer
from notify.application.notifying import (
    DeliverNotification,
    DeliverySettings,
    Notifier,
)
from notify.application.ports import OutgoingNotification, PermanentDeliveryError, TransientDeliveryError
from notify.domain.notifications import EMAIL, SMS, NotifyPolicy, RetrySchedule
from notify.entrypoints.bootstrap import SCHEMAS, bus
from notify.entrypoints.messages import INBOUND

CODE = "000.01.06.H56-261201-0001"
T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


class FakeChannel:
    """A channel port in memory: ``outcomes`` are what the next sends do (an exception to raise
    or None to accept); it keeps what it accepted."""

    def __init__(self):
        self.accepted: list[OutgoingNotification] = []
        self.outcomes: list[Exception | None] = []
        self.calls = 0

    def send(self, message: OutgoingNotification) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.accepted.append(message)
        return f"250 ok {message.notification_id}"


class Killed(BaseException):
    """A worker killed in the middle of a send (nothing after it runs)."""


class Names:
    def procedure_name(self, code: str) -> str:
        return "Cấp giấy phép xây dựng"

    def unit_name(self, slug: str) -> str:
        return "UBND thị xã Bỉm Sơn"


@pytest.fixture
def world():
    uows, publisher = memory_units_of_work()
    clock = SettableClock(T0)
    channels = {EMAIL: FakeChannel(), SMS: FakeChannel()}
    settings = DeliverySettings(schedules={EMAIL: RetrySchedule((60, 600, 3600), jitter=0.2),
                                           SMS: RetrySchedule((60,), jitter=0)},
                                sending_lease=timedelta(seconds=60))
    notifier = Notifier(uows, SCHEMAS, channels, JinjaRenderer(), Names(), settings,
                        NotifyPolicy(per_procedure={"9.999999": {"events": ["dossier.received"]}}),
                        clock=clock, rng=random.Random(7))
    dispatch = INBOUND.dispatch(bus(notifier, None))

    class World:
        pass

    w = World()
    w.uows, w.publisher, w.clock, w.channels, w.notifier = uows, publisher, clock, channels, notifier

    def event(name: str, data, event_id: str | None = None) -> str:
        built = build_event(name=name, data=data, source="/motcua/test", subject=CODE, area="bim-son")
        out = built.to_outgoing()
        headers = dict(out.headers)
        if event_id:
            headers["cloudEvents:id"] = event_id
        w.answers.append(dispatch(Delivery(out.body, headers, out.content_type, "notify.bim-son")))
        return headers["cloudEvents:id"]

    def work() -> int:
        """Hand every published notify.deliver to the worker (as the queue would), once."""
        pending = [m for m in w.publisher.published if m.headers.get("motcua-work-type") == "notify.deliver"]
        w.publisher.published = [m for m in w.publisher.published if m not in pending]
        for m in pending:
            dispatch(Delivery(m.body, m.headers, m.content_type, "notify.bim-son"))
        return len(pending)

    w.event, w.work, w.answers = event, work, []
    w.notifications = uows.store.collection(NotificationRecord)
    return w


def received(email: str = "b@example.vn", phone: str = "", procedure: str = "1.004616", channels=()):
    return events_pb2.DossierReceived(
        code=CODE, receiving_unit="bim-son", area="bim-son", procedure_code=procedure,
        applicant=types_pb2.Applicant(full_name="Lê Thị B", email=email, phone=phone, notify_channels=channels),
        received_at=timestamp(T0), due_at=timestamp(T0 + timedelta(hours=7)))


def events(w, kind: str) -> list:
    wanted = f"vn.motcua.notification.{kind}.v1"
    return [m for m in w.publisher.published if m.headers.get("cloudEvents:type") == wanted]


def test_one_notification_per_event_and_channel_delivered_once_however_often_it_comes(world):
    w = world
    received_id = w.event("dossier.received", received(phone="0912 345 678"))
    w.event("dossier.received", received(phone="0912 345 678"), event_id=received_id)  # redelivered
    w.event("dossier.step_completed", events_pb2.StepCompleted(code=CODE))  # not the applicant's business
    assert w.notifications.count({"code": CODE}) == 2  # email + sms
    assert w.work() == 0  # sent at once by the event's handler: no notify.deliver to itself
    email, sms = w.channels[EMAIL].accepted, w.channels[SMS].accepted
    assert len(email) == len(sms) == 1
    assert email[0].subject == f"Hồ sơ {CODE} đã được tiếp nhận"
    assert "Hẹn trả kết quả: 16 giờ 00 ngày 04/5/2026" in email[0].text
    assert "Cấp giấy phép xây dựng" in email[0].text and "UBND thị xã Bỉm Sơn" in email[0].html
    sent = [events_pb2.NotificationSent.FromString(m.body) for m in events(w, "sent")]
    assert sorted(s.channel for s in sent) == ["email", "sms"]
    assert {(s.receiving_unit, s.area, s.attempts) for s in sent} == {("bim-son", "bim-son", 1)}
    # a notify.deliver delivered again after the fact sends nothing
    nid = email[0].notification_id
    assert w.notifier.deliver(DeliverNotification(nid)) == "not due"
    assert w.channels[EMAIL].calls == 1


def test_an_event_that_is_nobody_s_business_leaves_no_processed_record(world):
    """Most events notify takes (assigned, signed, archived…) are wanted by no subscriber and are
    not the applicant's: the handler tells the kernel so, and no record is written for them."""
    w = world
    w.event("dossier.received", received())
    w.event("dossier.step_completed", events_pb2.StepCompleted(code=CODE))
    assert w.answers == [None, NOTHING_TO_REMEMBER]


def test_transient_failures_back_off_then_deliver_and_permanent_ones_fail_at_once(world):
    w = world
    w.channels[EMAIL].outcomes = [TransientDeliveryError("connection refused"), TransientDeliveryError("451")]
    w.channels[SMS].outcomes = [PermanentDeliveryError("400 bad number", "400 {}")]
    w.event("dossier.received", received(phone="0912345678"))
    (email,) = [d for d in w.notifications.find({"code": CODE}) if d["channel"] == EMAIL]
    assert email["status"] == "pending" and len(email["attempts"]) == 1
    wait = email["next_attempt_at"] - T0
    assert timedelta(seconds=48) <= wait <= timedelta(seconds=72)  # 60 s ± 20 %
    assert w.notifier.deliver_due() == 0 and w.channels[EMAIL].calls == 1  # not due yet: nothing sent
    w.clock.advance(seconds=73)
    w.notifier.deliver_due()  # second attempt fails too
    w.clock.advance(seconds=721)
    w.notifier.deliver_due()
    assert len(w.channels[EMAIL].accepted) == 1
    email = w.notifications.get(email["_id"])
    assert email["status"] == "delivered" and [a["outcome"] for a in email["attempts"]] == ["failed"] * 2 + ["accepted"]
    assert events_pb2.NotificationSent.FromString(events(w, "sent")[0].body).attempts == 3
    (failed,) = [events_pb2.NotificationFailed.FromString(m.body) for m in events(w, "failed")]
    assert failed.channel == "sms" and failed.permanent and "400" in failed.reason and failed.attempts == 1


def test_a_notification_fails_with_its_reason_once_the_schedule_is_spent(world):
    w = world
    w.channels[SMS].outcomes = [TransientDeliveryError("503"), TransientDeliveryError("503 again")]
    w.event("dossier.received", received(email="", phone="0912345678"))
    w.clock.advance(seconds=61)
    w.notifier.deliver_due()
    (failed,) = [events_pb2.NotificationFailed.FromString(m.body) for m in events(w, "failed")]
    assert not failed.permanent and "503 again" in failed.reason and failed.attempts == 2
    assert events(w, "sent") == []


def test_a_notice_before_its_applicant_is_known_waits_for_dossier_received(world):
    w = world
    w.event("dossier.payment_requested", events_pb2.PaymentRequested(code=CODE, amount=1500000, note="lệ phí"))
    assert w.notifications.count({"code": CODE}) == 0
    assert w.uows.store.collection(WaitingNoticeRecord).count({"code": CODE}) == 1
    w.event("dossier.received", received())
    w.work()
    subjects = sorted(m.subject for m in w.channels[EMAIL].accepted)
    assert subjects == [f"Hồ sơ {CODE} đã được tiếp nhận", f"Hồ sơ {CODE}: đề nghị thực hiện nghĩa vụ tài chính"]
    assert any("1.500.000 đồng (lệ phí)" in m.text for m in w.channels[EMAIL].accepted)
    assert w.uows.store.collection(WaitingNoticeRecord).count({"code": CODE}) == 0


def test_a_notice_that_raced_its_dossier_reception_is_released_by_the_timer(world):
    w = world
    w.event("dossier.result_ready", events_pb2.ResultReady(code=CODE, ready_at=timestamp(T0)))
    # dossier.received handled meanwhile on another worker, which found no notice waiting yet
    w.uows.store.collection(SCHEMAS.recipients).insert({"_id": CODE, "area": "bim-son", "full_name": "Lê Thị B",
                                                       "email": "b@example.vn", "procedure_code": "1.004616"})
    w.clock.advance(seconds=3)
    w.notifier.deliver_due()
    w.work()
    assert [m.subject for m in w.channels[EMAIL].accepted] == [f"Hồ sơ {CODE} đã có kết quả"]
    assert w.uows.store.collection(WaitingNoticeRecord).count({"code": CODE}) == 0


def test_a_worker_killed_while_sending_leaves_it_to_the_timer_after_the_lease(world):
    w = world
    w.channels[EMAIL].outcomes = [Killed()]  # the worker dies while it sends the first attempt
    with pytest.raises(Killed):
        w.event("dossier.received", received())
    (doc,) = w.notifications.find({"code": CODE})
    assert doc["status"] == "sending" and doc["attempts"] == []
    w.notifier.deliver_due()  # within the lease: someone may be sending it, nothing to do
    assert w.channels[EMAIL].calls == 1 and w.channels[EMAIL].accepted == []
    w.clock.advance(seconds=61)
    w.notifier.deliver_due()
    assert len(w.channels[EMAIL].accepted) == 1 and len(events(w, "sent")) == 1


def test_the_policy_decides_per_procedure_which_events_notify(world):
    w = world
    w.event("dossier.received", received(procedure="9.999999"))
    w.event("dossier.result_ready", events_pb2.ResultReady(code=CODE, ready_at=timestamp(T0)))
    w.work()
    assert [m.subject for m in w.channels[EMAIL].accepted] == [f"Hồ sơ {CODE} đã được tiếp nhận"]
    with pytest.raises(ValueError):
        NotifyPolicy.from_mapping({"procedures": {"1.0": {"events": ["dossier.nonsense"]}}})


def test_the_applicant_chooses_the_channels_at_submission(world):
    w = world
    w.event("dossier.received", received(phone="0912345678", channels=["sms"]))
    w.work()
    assert w.channels[EMAIL].accepted == [] and len(w.channels[SMS].accepted) == 1


def test_a_deliver_work_message_without_an_id_is_parked(world):
    from motcua.messaging.consuming import PermanentFailure
    from motcua.messaging.envelope import build_work

    out = build_work(service="notify", area="bim-son", type="notify.deliver",
                     data=work_pb2.DeliverNotification()).to_outgoing()
    with pytest.raises(PermanentFailure):
        INBOUND.dispatch(MessageBus({}))(Delivery(out.body, out.headers, out.content_type, "notify.bim-son"))


def test_a_supplement_request_e_mails_form_02_attached_and_waits_while_it_cannot_be_read(world):
    w = world
    objects = MemoryObjects()
    form = objects.put_bytes("routing/d1", b"%PDF-1.7 mau 02", "application/pdf")
    reads: list[str] = []

    def document(ref) -> bytes:
        reads.append(ref["key"])
        if len(reads) == 1:
            raise ConnectionError("S3 unavailable")  # the first attempt: the store is away
        return objects.get(ObjectRef.from_dict(dict(ref)))

    w.notifier._documents = document
    w.event("dossier.received", received(phone="0912 345 678"))
    w.work()
    w.event("dossier.supplement_requested", events_pb2.SupplementRequested(
        code=CODE, reason="Thiếu bản vẽ", components=["Bản vẽ mặt bằng"],
        supplement_deadline=timestamp(T0 + timedelta(days=7)),
        form=types_pb2.DocumentRef(key=form.key, sha256=form.sha256, size=form.size, media_type=form.media_type,
                                   name="phieu-yeu-cau-bo-sung-02.pdf")))
    w.work()
    email, sms = w.channels[EMAIL], w.channels[SMS]
    # The SMS went out with the text only; the e-mail waits for its form rather than leave without it.
    assert "Bản vẽ mặt bằng" in sms.accepted[-1].text and sms.accepted[-1].attachments == ()
    assert len(email.accepted) == 1 and events(w, "failed") == []
    w.clock.now = T0 + timedelta(hours=2)  # past the first retry (60 s, jittered)
    w.notifier.deliver_due()
    sent = email.accepted[-1]
    assert [(a.name, a.media_type, a.data) for a in sent.attachments] == [
        ("phieu-yeu-cau-bo-sung-02.pdf", "application/pdf", b"%PDF-1.7 mau 02")]
    assert "- Bản vẽ mặt bằng" in sent.text and reads == [form.key, form.key]


def test_every_attempt_is_timed_by_channel_and_outcome_for_the_operators():
    """The worker's notifier (bootstrap) reports each attempt to motcua_notify_delivery_duration_seconds."""
    from prometheus_client import REGISTRY

    from notify.config import NotifySettings
    from notify.entrypoints.bootstrap import notifier

    def attempts(channel: str, outcome: str) -> float:
        return REGISTRY.get_sample_value("motcua_notify_delivery_duration_seconds_count",
                                         {"channel": channel, "outcome": outcome}) or 0

    kinds = [(EMAIL, "failed"), (SMS, "refused"), (EMAIL, "accepted"), (SMS, "accepted")]
    before = {kind: attempts(*kind) for kind in kinds}
    uows, publisher = memory_units_of_work()
    channels = {EMAIL: FakeChannel(), SMS: FakeChannel()}
    channels[EMAIL].outcomes = [TransientDeliveryError("421 try later")]
    channels[SMS].outcomes = [PermanentDeliveryError("400 bad number", "400 {}")]
    dispatch = INBOUND.dispatch(bus(notifier(NotifySettings(), uows, channel_ports=channels), None))

    def deliver(name: str, data) -> None:
        built = build_event(name=name, data=data, source="/motcua/test", subject=CODE, area="bim-son").to_outgoing()
        dispatch(Delivery(built.body, dict(built.headers), built.content_type, "notify.bim-son"))
        for m in [m for m in publisher.published if m.headers.get("motcua-work-type") == "notify.deliver"]:
            publisher.published.remove(m)
            dispatch(Delivery(m.body, m.headers, m.content_type, "notify.bim-son"))

    deliver("dossier.received", received(phone="0912345678"))  # e-mail: failed; SMS: refused
    deliver("dossier.payment_requested", events_pb2.PaymentRequested(code=CODE, amount=1500000, note="lệ phí"))
    assert {kind: attempts(*kind) - n for kind, n in before.items()} == dict.fromkeys(kinds, 1)
