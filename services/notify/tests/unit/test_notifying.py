"""Notify's use cases on fake ports (in-memory store, a recording publisher), fed through the
worker's own decoding of public events."""

from __future__ import annotations

import pytest
from motcua_dev.testing import memory_units_of_work

from motcua.events.v1 import events_pb2
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import build_event
from motcua.types.v1 import types_pb2
from notify.adapters.records import NotificationRecord
from notify.application.notifying import Notifier, NotifyApplicant, RememberApplicant
from notify.entrypoints.messages import INBOUND

CODE = "000.01.06.H56-261201-0001"


@pytest.fixture
def worker():
    uows, publisher = memory_units_of_work()
    notifier = Notifier(uows)
    dispatch = INBOUND.dispatch(MessageBus({RememberApplicant: notifier.remember, NotifyApplicant: notifier.notify}))

    def deliver(name: str, data) -> str:
        event = build_event(name=name, data=data, source="/motcua/test", subject=CODE, area="bim-son")
        out = event.to_outgoing()
        dispatch(Delivery(out.body, out.headers, out.content_type, "notify.bim-son"))
        return event.id
    return uows, publisher, deliver


def received() -> events_pb2.DossierReceived:
    return events_pb2.DossierReceived(code=CODE, receiving_unit="phuong-ba-dinh", area="bim-son",
                                      applicant=types_pb2.Applicant(full_name="Lê Thị B", email="b@example.vn"))


def test_the_applicant_is_told_once_per_notifiable_event_and_never_about_the_rest(worker):
    uows, publisher, deliver = worker
    deliver("dossier.received", received())
    deliver("dossier.received", received())  # another event (another id): a second notification
    deliver("dossier.step_completed", events_pb2.StepCompleted(code=CODE))
    ready = build_event(name="dossier.result_ready", data=events_pb2.ResultReady(code=CODE), source="/t",
                        subject=CODE, area="bim-son")
    out = ready.to_outgoing()
    for _ in range(3):  # the same event delivered three times
        INBOUND.dispatch(MessageBus({NotifyApplicant: Notifier(uows).notify}))(
            Delivery(out.body, out.headers, out.content_type, "notify.bim-son"))
    assert publisher.types() == ["vn.motcua.notification.sent.v1"] * 3
    sent = [events_pb2.NotificationSent.FromString(m.body) for m in publisher.published]
    assert {(s.receiving_unit, s.area) for s in sent} == {("phuong-ba-dinh", "bim-son")}
    assert uows.store.collection(NotificationRecord).count({"code": CODE}) == 3


def test_an_event_before_its_applicant_is_known_is_retried_not_lost(worker):
    uows, publisher, deliver = worker
    with pytest.raises(LookupError):
        deliver("dossier.returned", events_pb2.DossierReturned(code=CODE))
    assert publisher.published == []
