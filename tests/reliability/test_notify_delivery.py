"""Notify through a long provider outage and a kill -9 while it sends, counted where the messages
land: at the SMTP server in the test (and the public notification events at an independent
subscriber), never in notify's own rows.

Only notify's worker runs (a process, on a private vhost); the test publishes the public events
routing and intake would. The retry schedule is time-compressed: seconds standing for the
production schedule's hours (MOTCUA_NOTIFY_EMAIL_RETRY_S)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
from motcua_dev.devstack import Stack, eventually
from motcua_dev.harness import EventCollector, private_vhost
from motcua_dev.infra import free_port
from motcua_dev.mailbox import SmtpSink, WebhookReceiver
from motcua_dev.platform import api_spec, worker_spec

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event
from motcua.messaging.publisher import Publisher
from motcua.protobufs import timestamp
from motcua.types.v1 import types_pb2

pytestmark = pytest.mark.reliability

AREA = "bim-son"
SENT = "vn.motcua.notification.sent.v1"
FAILED = "vn.motcua.notification.failed.v1"


@pytest.fixture(scope="module")
def notify(tmp_path_factory, amqp_uri):
    """A notify worker and api for one area delivering to an SMTP server of the test; yields (stack,
    mail, publish(n, prefix) → codes, collector). Shared by the module's tests, which count only
    their own dossiers and leave the servers up and fast."""
    tmp_path = tmp_path_factory.mktemp("notify")
    with ExitStack() as stack:
        vhost = stack.enter_context(private_vhost(amqp_uri))
        mail = stack.enter_context(SmtpSink(tmp_path / "mail"))
        env = {"MOTCUA_AMQP_URI": vhost, "MOTCUA_DATA_DIR": str(tmp_path / "data"), "MOTCUA_AREAS": AREA,
               "MOTCUA_NOTIFY_SMTP_PORT": str(mail.port), "MOTCUA_NOTIFY_CHANNELS": "email",
               # 25 s of retries standing for the production schedule's days
               "MOTCUA_NOTIFY_EMAIL_RETRY_S": ",".join(["0.5", "1"] + ["2"] * 12),
               "MOTCUA_NOTIFY_SENDING_LEASE_S": "3", "MOTCUA_NOTIFY_DUE_INTERVAL_S": "0.2",
               "MOTCUA_OUTBOX_GRACE_S": "3", "MOTCUA_RETRY_DELAYS_MS": "200,1000,3000",
               "MOTCUA_NOTIFY_WEBHOOK_RETRY_S": ",".join(["0.5", "1"] + ["2"] * 12),
               "MOTCUA_NOTIFY_WEBHOOK_ALLOW_HTTP": "true", "MOTCUA_NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true"}
        port = free_port()
        processes = stack.enter_context(Stack([worker_spec("notify", env), api_spec("notify", env, port)],
                                              tmp_path / "logs"))
        processes.api = f"127.0.0.1:{port}"
        processes.wait_ready(timeout=60)
        events = EventCollector(vhost, durable=True).start()
        stack.callback(events.stop)
        publisher = Publisher(vhost)
        stack.callback(publisher.close)

        def publish(n: int, prefix: str) -> list[str]:
            codes = [f"000.00.06.H56-261207-{prefix}{i:03d}" for i in range(n)]
            now = datetime.now(UTC)
            for code in codes:
                data = events_pb2.DossierReceived(
                    code=code, procedure_code="1.004616", receiving_unit=AREA, area=AREA,
                    applicant=types_pb2.Applicant(full_name="Nguyễn Văn An", email=f"{code}@example.vn"),
                    received_at=timestamp(now), due_at=timestamp(now + timedelta(days=3)))
                publisher.publish(build_event(name="dossier.received", data=data, source="/motcua/intake",
                                              subject=code, area=AREA).to_outgoing())
            return codes
        yield processes, mail, publish, events


def _sent(events: EventCollector, codes: list[str]) -> set[str]:
    """Notification ids of the notification.sent events about ``codes`` (distinct)."""
    wanted = set(codes)
    return {events_pb2.NotificationSent.FromString(e.body).notification_id for e in events.seen(SENT)
            if e.subject in wanted}


def _mine(mail: SmtpSink, codes: list[str]) -> list:
    """The e-mails about ``codes`` (each test publishes dossiers of its own)."""
    wanted = {f"{code}@example.vn" for code in codes}
    return [m for m in list(mail.messages) if str(m["To"]) in wanted]



def test_a_long_smtp_outage_then_every_message_delivered_exactly_once(notify):
    processes, mail, publish, events = notify
    mail.down()
    codes = publish(20, "1")
    time.sleep(6)  # several attempts of each fail meanwhile (0.5 s, 1 s, 2 s, 2 s...)
    assert _mine(mail, codes) == [] and _sent(events, codes) == set()
    mail.up()
    assert eventually(lambda: len(_sent(events, codes)) == 20, 60), \
        (len(mail.messages), processes.tail("notify-worker"))
    time.sleep(2)  # anything sent twice would arrive now
    received = Counter(str(m["To"]) for m in _mine(mail, codes))
    assert received == Counter({f"{code}@example.vn": 1 for code in codes})
    assert events.seen(FAILED) == []
    attempts = [events_pb2.NotificationSent.FromString(e.body).attempts for e in events.seen(SENT)
                if e.subject in set(codes)]
    assert min(attempts) >= 2, attempts  # the outage was felt: no message went through on its first try
    print(f"\noutage: 20 e-mails delivered once each after {max(attempts)} attempts at most", file=sys.stderr)


def test_kill_9_of_the_worker_while_it_sends_loses_nothing(notify):
    processes, mail, publish, events = notify
    mail.delay_s = 0.3  # a slow server: the worker is mid-conversation most of the time
    codes = publish(30, "2")
    assert eventually(lambda: len(_mine(mail, codes)) >= 5, 60), processes.tail("notify-worker")
    processes.kill("notify-worker")
    at_kill = len(_mine(mail, codes))
    assert at_kill < 30, "everything was sent before the kill: nothing was tested"
    time.sleep(1)
    processes.restart("notify-worker")
    processes.wait_ready(timeout=60, names=["notify-worker"])
    mail.delay_s = 0
    assert eventually(lambda: len(_sent(events, codes)) == 30, 90), \
        (len(mail.messages), processes.tail("notify-worker"))
    time.sleep(4)  # past the sending lease: a retaken message would arrive now
    mine = _mine(mail, codes)
    received = Counter(str(m["To"]) for m in mine)
    assert set(received) == {f"{code}@example.vn" for code in codes}  # nothing lost
    ids = Counter(str(m["Message-ID"]) for m in mine)
    twice = sum(n - 1 for n in ids.values())
    # A message whose DATA the server had taken when the worker died (the server goes on and keeps
    # it; the worker never read the 250) is sent again after the lease with the same Message-ID
    # (RFC 1047's duplicate): at most the ones in flight then (prefetch 10 + the timer's 8).
    assert twice == sum(n - 1 for n in received.values()) and twice <= 18, ids
    print(f"\nkill -9: {at_kill} e-mails before the kill, 30 after, {twice} sent again (same Message-ID)",
          file=sys.stderr)


def test_a_dead_webhook_endpoint_delays_no_one_and_gets_everything_once_after_its_outage(notify):
    import grpc

    from motcua.notify.v1 import notify_pb2, notify_pb2_grpc

    processes, mail, publish, events = notify
    with WebhookReceiver() as live, WebhookReceiver() as dead, grpc.insecure_channel(processes.api) as channel:
        api = notify_pb2_grpc.SubscriptionServiceStub(channel)
        for n, receiver in enumerate((live, dead)):
            created = api.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
                request_id=f"r{n}", url=receiver.url, event_types=["dossier.received"], areas=[AREA]), timeout=10)
            receiver.secrets = [created.secret]
        dead.down()
        codes = publish(20, "3")
        assert eventually(lambda: len(live.received) == 20, 30), processes.tail("notify-worker")
        assert dead.requests == 0
        time.sleep(5)  # the outage goes on: every delivery to it fails, again and again
        dead.up()
        assert eventually(lambda: len(dead.received) == 20, 60), processes.tail("notify-worker")
        time.sleep(2)  # anything sent twice would arrive now
        for receiver in (live, dead):
            assert sorted(Counter(receiver.ids()).values()) == [1] * 20 and receiver.rejected == 0
            assert {r["event"]["subject"] for r in receiver.received} == set(codes)
    print("\nwebhook outage: the live subscriber got 20 while the other was down; 20 each, once", file=sys.stderr)


def test_kill_9_of_the_worker_while_it_posts_webhooks_loses_nothing(notify):
    import grpc

    from motcua.notify.v1 import notify_pb2, notify_pb2_grpc

    processes, mail, publish, events = notify
    with WebhookReceiver() as receiver, grpc.insecure_channel(processes.api) as channel:
        created = notify_pb2_grpc.SubscriptionServiceStub(channel).CreateSubscription(
            notify_pb2.CreateSubscriptionRequest(request_id="crash", url=receiver.url,
                                                 event_types=["dossier.received"], areas=[AREA]), timeout=10)
        receiver.secrets = [created.secret]
        receiver.delay_s = 0.2  # a slow subscriber: the worker is mid-request most of the time
        codes = set(publish(30, "4"))
        mine = lambda: [r for r in list(receiver.received) if r["event"]["subject"] in codes]  # noqa: E731
        assert eventually(lambda: len(mine()) >= 5, 60), processes.tail("notify-worker")
        processes.kill("notify-worker")
        at_kill = len(mine())
        assert at_kill < 30, "everything was delivered before the kill: nothing was tested"
        time.sleep(1)
        processes.restart("notify-worker")
        processes.wait_ready(timeout=60, names=["notify-worker"])
        receiver.delay_s = 0
        assert eventually(lambda: {r["event"]["subject"] for r in mine()} == codes, 90), processes.tail("notify-worker")
        time.sleep(4)  # past the sending lease: a retaken delivery would arrive now
        ids = Counter(r["id"] for r in mine())
        twice = sum(n - 1 for n in ids.values())
        assert len(ids) == 30 and twice <= 1 and receiver.rejected == 0, ids  # one lane: one POST in flight
    print(f"\nkill -9 (webhooks): {at_kill} before the kill, 30 after, {twice} again (same webhook-id)",
          file=sys.stderr)
