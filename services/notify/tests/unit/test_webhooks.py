"""The webhook use cases on fake ports: in-memory store, a recording publisher, a fake sender
(per-URL outcomes), a settable clock, a URL policy and an event history in memory."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from motcua_dev.testing import SettableClock, memory_units_of_work

from motcua.errors import AlreadyExists, InvalidArgument, NotFound
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event
from notify.adapters.webhooks import UrlPolicy, cloudevent_json
from notify.application.webhooks import Webhooks, WebhookSettings
from notify.domain.delivery import TransientDeliveryError
from notify.domain.notifications import RetrySchedule
from notify.entrypoints.bootstrap import WEBHOOK_SCHEMAS

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
GOOD, DEAD = "https://good.example.vn/hooks", "https://dead.example.vn/hooks"


class FakeSender:
    def __init__(self):
        self.sent: list[tuple[str, str, str, list[str]]] = []
        self.dead: set[str] = set()
        self.observed: list[tuple[str, str]] = []  # (channel, outcome) of every attempt, as the metrics see them

    def send(self, url, message_id, body, secrets):
        if url in self.dead:
            raise TransientDeliveryError("endpoint unreachable: ConnectionError")
        self.sent.append((url, message_id, body, list(secrets)))
        return "204 "


class History:
    def __init__(self):
        self.events = []

    def since(self, moment):
        return [e for e in self.events if e.time >= moment]


@pytest.fixture
def hooks():
    uows, publisher = memory_units_of_work()
    clock, sender, history = SettableClock(T0), FakeSender(), History()
    service = Webhooks(uows, WEBHOOK_SCHEMAS, sender, UrlPolicy(allow_http=False, allow_private=True), cloudevent_json,
                       WebhookSettings(schedule=RetrySchedule((5, 300, 1800), jitter=0),
                                       disable_after=timedelta(hours=1)),
                       history=history, clock=clock, rng=random.Random(3),
                       observe=lambda channel, outcome, seconds: sender.observed.append((channel, outcome)))
    return service, sender, clock, publisher, history


def event(name="dossier.received", area="bim-son", at=T0):
    return build_event(name=name, data=events_pb2.DossierReceived(code="C-1", area=area, receiving_unit=area),
                       source="/motcua/intake", subject="C-1", area=area, time=at)


def test_fan_out_signs_cloudevents_json_once_per_event_and_subscription(hooks):
    service, sender, clock, _, _ = hooks
    sub, secret = service.create("tich-hop", "r1", GOOD, ["dossier.received"], ["bim-son"])
    assert secret.startswith("whsec_")
    assert service.create("tich-hop", "r1", GOOD, ["dossier.received"], ["bim-son"])[0]["_id"] == sub["_id"]
    with pytest.raises(AlreadyExists):
        service.create("tich-hop", "r1", GOOD, ["*"], ["bim-son"])
    e = event()
    assert service.fan_out(e) == 1 and service.fan_out(e) == 1  # redelivered event: still one delivery
    assert service.fan_out(event("dossier.assigned")) == 0 and service.fan_out(event(area="ba-thuoc")) == 0
    assert service.deliver_due(wait=True) == 1 and service.deliver_due(wait=True) == 0
    ((url, message_id, body, secrets),) = sender.sent
    assert (url, message_id, secrets) == (GOOD, e.id, [secret])
    document = json.loads(body)
    assert document["type"] == "vn.motcua.dossier.received.v1" and document["data"]["code"] == "C-1"
    assert document["specversion"] == "1.0" and document["datacontenttype"] == "application/json"
    (delivery,) = service.deliveries("tich-hop", sub["_id"])
    assert delivery["status"] == "delivered" and delivery["attempts"][0]["outcome"] == "accepted"
    with pytest.raises(NotFound):  # another agency sees nothing of it
        service.deliveries("someone-else", sub["_id"])


def test_a_dead_endpoint_delays_no_one_and_is_disabled_after_failing_long_enough(hooks):
    service, sender, clock, publisher, _ = hooks
    good, _ = service.create("a", "r1", GOOD, ["*"], ["*"])
    dead, _ = service.create("b", "r2", DEAD, ["*"], ["*"])
    sender.dead.add(DEAD)
    for n in range(3):
        service.fan_out(event(at=T0 + timedelta(seconds=n)))
    service.deliver_due(wait=True)
    assert len(sender.sent) == 3  # the live endpoint got everything at once
    assert sorted(sender.observed) == [("webhook", "accepted")] * 3 + [("webhook", "failed")]  # the metrics' view
    pending = service.deliveries("b", dead["_id"])
    assert {d["status"] for d in pending} == {"pending"}
    assert sum(len(d["attempts"]) for d in pending) == 1  # its lane stopped at the first failure
    assert service.get("b", dead["_id"])["failing_since"] is not None
    for step in (6, 301, 1801, 1801):
        clock.advance(seconds=step)
        service.deliver_due(wait=True)
    sub = service.get("b", dead["_id"])
    assert sub["status"] == "disabled" and "failing since" in sub["note"]
    kind = "vn.motcua.webhook.endpoint_disabled.v1"
    disabled = [m for m in publisher.published if m.headers["cloudEvents:type"] == kind]
    assert len(disabled) == 1
    clock.advance(seconds=3600)
    service.deliver_due(wait=True)
    assert {d["status"] for d in service.deliveries("b", dead["_id"])} == {"failed"}
    # enabled again, it gets what comes next
    sender.dead.clear()
    service.update("b", dead["_id"], enable=True)
    service.fan_out(event(at=clock.now))
    service.deliver_due(wait=True)
    assert sender.sent[-1][0] == DEAD


def test_rotation_signs_with_both_secrets_for_a_while(hooks):
    service, sender, clock, _, _ = hooks
    sub, old = service.create("a", "r1", GOOD, ["*"], ["*"])
    new, until = service.rotate("a", sub["_id"])
    service.send_test("a", sub["_id"])
    service.deliver_due(wait=True)
    assert sender.sent[-1][3] == [new, old] and until == T0 + timedelta(days=1)
    assert json.loads(sender.sent[-1][2])["type"] == "vn.motcua.webhook.test.v1"
    clock.advance(days=1, seconds=1)
    service.send_test("a", sub["_id"])
    service.deliver_due(wait=True)
    assert sender.sent[-1][3] == [new]


def test_redeliver_since_reads_the_history_and_sends_again_with_the_same_webhook_id(hooks):
    service, sender, clock, _, history = hooks
    sub, _ = service.create("a", "r1", GOOD, ["dossier.received"], ["*"])
    old, recent = event(at=T0 - timedelta(hours=3)), event(at=T0 - timedelta(minutes=5))
    history.events = [old, recent, event("dossier.assigned", at=T0 - timedelta(minutes=4))]
    service.fan_out(recent)
    service.deliver_due(wait=True)
    assert service.redeliver_since("a", sub["_id"], T0 - timedelta(hours=1)) == 1
    service.deliver_due(wait=True)
    assert [s[1] for s in sender.sent] == [recent.id, recent.id]
    with pytest.raises(InvalidArgument):
        service.redeliver_since("a", sub["_id"], T0 + timedelta(days=1))


@pytest.mark.parametrize(("url", "field_reason"), [
    ("http://good.example.vn/hooks", "https"), ("ftp://x.vn/", "https"), ("https:///nohost", "host"),
    ("https://user:pw@x.vn/", "credentials"), ("https://127.0.0.1/hooks", "non-public"),
    ("https://10.1.2.3/hooks", "non-public"), ("https://[::1]/hooks", "non-public"),
    ("https://169.254.169.254/latest", "non-public")])
def test_urls_are_checked(url, field_reason):
    from notify.domain.webhooks import InvalidSubscription

    with pytest.raises(InvalidSubscription, match=field_reason):
        UrlPolicy(allow_http=False, allow_private=False).check(url)


def test_filters_are_checked(hooks):
    service = hooks[0]
    for types, areas in (([], ["*"]), (["dossier"], ["*"]), (["*"], []), (["*"], ["Bim Son"])):
        with pytest.raises(InvalidArgument):
            service.create("a", "r", GOOD, types, areas)
