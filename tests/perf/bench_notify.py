"""Benchmark (not a test): notify end to end beside a raw loop in the same run. Prints figures and
ratios; asserts nothing about time.

    .venv/bin/python tests/perf/bench_notify.py [--emails 200] [--webhooks 200] [--fanout 100]

Starts only what it measures: notify's worker and api processes as the platform starts them, on
a fresh SQLite store and a private RabbitMQ vhost (the running RabbitMQ must answer), with the
providers in this process (``motcua_dev.mailbox``).

(a) e-mails/s: ``--emails`` dossier.received events published at once; the time until the SMTP
    server holds them all, beside a raw loop sending the same number of messages straight to the
    same server through the same adapter (``SmtpChannel.send``, one connection per message, as
    notify does).
(b) webhooks/s: one subscription; ``--webhooks`` dossier.assigned events (no e-mail); the time
    until the receiver verified them all, beside a raw loop POSTing the same signed bodies
    (``StandardWebhookSender.send``).

Figures on the 2-core development machine, shared (one run): (a) 22.7 e-mails/s vs 25.6/s raw
(ratio 0.89); (b) 72.5 webhooks/s vs 444.5/s raw (0.16: each event is consumed, fanned out,
claimed and recorded in SQLite); (c) 9 live subscribers had 100 events each after 4.36 s, and
after 4.87 s with a dead tenth beside them.

(c) fan-out: ``--fanout`` events to 10 subscribers, one of them dead (accepts connections and
    never answers: every attempt waits for the webhook timeout), beside the same with 9 live
    subscribers only: the live ones must not slow down.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from motcua_dev.devstack import Stack
from motcua_dev.harness import private_vhost
from motcua_dev.infra import free_port
from motcua_dev.mailbox import SmtpSink, WebhookReceiver
from motcua_dev.platform import api_spec, worker_spec

from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event
from motcua.messaging.publisher import Publisher
from motcua.notify.v1 import notify_pb2, notify_pb2_grpc
from motcua.protobufs import timestamp
from motcua.settings import PlatformSettings
from motcua.types.v1 import types_pb2
from notify.adapters.email import SmtpChannel, SmtpConfig
from notify.adapters.webhooks import StandardWebhookSender
from notify.domain.delivery import OutgoingNotification

AREA = "bim-son"


def wait(condition, timeout: float = 300) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("not done in time")
        time.sleep(0.02)
    return time.perf_counter() - started


class Blackhole:
    """A TCP endpoint that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--webhooks", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=100)
    args = parser.parse_args()
    amqp = PlatformSettings.load().amqp_uri
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        vhost = stack.enter_context(private_vhost(amqp))
        mail = stack.enter_context(SmtpSink())
        port = free_port()
        env = {"MOTCUA_AMQP_URI": vhost, "MOTCUA_DATA_DIR": str(tmp / "data"), "MOTCUA_AREAS": AREA,
               "MOTCUA_NOTIFY_SMTP_PORT": str(mail.port), "MOTCUA_NOTIFY_CHANNELS": "email",
               "MOTCUA_NOTIFY_DUE_INTERVAL_S": "0.2", "MOTCUA_NOTIFY_WEBHOOK_TIMEOUT_S": "5",
               "MOTCUA_NOTIFY_WEBHOOK_ALLOW_HTTP": "true", "MOTCUA_NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true",
               "MOTCUA_LOG_LEVEL": "WARNING"}
        processes = stack.enter_context(Stack([worker_spec("notify", env), api_spec("notify", env, port)],
                                              tmp / "logs"))
        processes.wait_ready(timeout=60)
        publisher = Publisher(vhost)
        stack.callback(publisher.close)
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}"))
        api = notify_pb2_grpc.SubscriptionServiceStub(channel)

        def publish(n: int, tag: str, applicant: bool = True) -> list[str]:
            """``n`` dossier.received events (applicant: e-mails too), or dossier.assigned ones (webhooks only)."""
            codes = [f"000.00.06.H56-261207-{tag}{i:04d}" for i in range(n)]
            now = datetime.now(UTC)
            for code in codes:
                if not applicant:
                    publisher.publish(build_event(name="dossier.assigned", source="/motcua/routing", subject=code,
                                                  area=AREA, data=events_pb2.DossierAssigned(
                                                      code=code, receiving_unit=AREA, area=AREA)).to_outgoing())
                    continue
                publisher.publish(build_event(name="dossier.received", source="/motcua/intake", subject=code,
                                              area=AREA, data=events_pb2.DossierReceived(
                    code=code, procedure_code="1.004616", receiving_unit=AREA, area=AREA,
                    applicant=types_pb2.Applicant(full_name="Nguyễn Văn An", email=f"{code}@example.vn"),
                    received_at=timestamp(now), due_at=timestamp(now + timedelta(days=3)))).to_outgoing())
            return codes

        def subscribe(url: str, areas: list[str]) -> str:
            created = api.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
                request_id=uuid.uuid4().hex, url=url, event_types=["dossier.assigned"], areas=areas), timeout=10)
            return created.secret

        # (a) e-mails
        publish(args.emails, "a")
        took = wait(lambda: len(mail.messages) >= args.emails)
        smtp = SmtpChannel(SmtpConfig(port=mail.port))
        started = time.perf_counter()
        for i in range(args.emails):
            smtp.send(OutgoingNotification(f"raw-{i}", "email", f"raw{i}@example.vn", "Hồ sơ", "Nội dung", "<p>x</p>"))
        raw = time.perf_counter() - started
        print(f"(a) e-mails: notify {args.emails / took:8.1f}/s end to end (event published → SMTP 250) | "
              f"raw loop {args.emails / raw:8.1f}/s | ratio {raw / took:.2f}")

        # (b) webhooks, one subscriber of dossier.assigned (events no applicant is told about)
        receiver = stack.enter_context(WebhookReceiver())
        receiver.secrets = [subscribe(receiver.url, [AREA])]
        publish(args.webhooks, "b", applicant=False)
        took = wait(lambda: len(receiver.received) >= args.webhooks)
        sender = StandardWebhookSender(timeout_s=5)
        body = receiver.received[0]["event"]
        import json

        text = json.dumps(body, ensure_ascii=False)
        started = time.perf_counter()
        for i in range(args.webhooks):
            sender.send(receiver.url, f"raw-{i}", text, receiver.secrets)
        raw = time.perf_counter() - started
        print(f"(b) webhooks: notify {args.webhooks / took:8.1f}/s end to end (event published → verified) | "
              f"raw loop {args.webhooks / raw:8.1f}/s | ratio {raw / took:.2f}")
        api.DeleteSubscription(notify_pb2.DeleteSubscriptionRequest(
            subscription_id=api.ListSubscriptions(notify_pb2.ListSubscriptionsRequest()).subscriptions[0]
            .subscription_id), timeout=10)

        # (c) fan-out: 9 live subscribers, then 9 live + 1 dead
        for label, dead in (("9 live", False), ("9 live + 1 dead", True)):
            live = [stack.enter_context(WebhookReceiver()) for _ in range(9)]
            for r in live:
                r.secrets = [subscribe(r.url, [AREA])]
            if dead:
                hole = Blackhole()
                subscribe(hole.url, [AREA])
            publish(args.fanout, "c" if not dead else "d", applicant=False)
            took = wait(lambda live=live: all(len(r.received) >= args.fanout for r in live))
            print(f"(c) fan-out to {label:<16}: every live subscriber had all {args.fanout} events after "
                  f"{took:6.2f} s ({9 * args.fanout / took:7.1f} deliveries/s)")
            for sub in api.ListSubscriptions(notify_pb2.ListSubscriptionsRequest()).subscriptions:
                api.DeleteSubscription(notify_pb2.DeleteSubscriptionRequest(subscription_id=sub.subscription_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
