"""Poison messages against a real worker: every shape of bad message is published (with pika, which
lets a test send what our own publisher never would) into a work queue consumed by a real nameko
worker process (poison_worker.py: motcua.worker.main, build_service, DeliveryConsumer), on a
private RabbitMQ vhost. Each message must end processed or in the queue's ``.dlq`` exactly once,
with the reason in a header; the queue must drain; every message must have been delivered a
bounded number of times (once, or twice for the one the runtime fails on); and no log line may
quote a message at length."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pika
import pytest
from kombu import Connection
from kombu import Queue as KombuQueue

from motcua import operate
from motcua.logs import LINE_LIMIT
from motcua.messaging import receiving, topology
from motcua.messaging.consuming import LAST_ERROR_LIMIT
from motcua.messaging.envelope import ATTEMPT_HEADER, new_traceparent

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("poison_worker.py")
OK_TYPE = "routing.poison_test_ok"  # the work type poison_worker.py's handler accepts
DELAYS_MS = "200,400"
GOOD_BODY = b'{"dossier_id":"d-1"}'
ONE_MB_OF_GARBAGE = random.Random(7).randbytes(1024 * 1024)


@dataclass
class Shape:
    tag: str
    outcome: str  # "parked" or "processed"
    handled: bool = False  # whether the service's handler is called (else the kernel parks it first)
    body: bytes = GOOD_BODY
    headers: dict = field(default_factory=dict)  # over the good message's; None removes one
    properties: dict = field(default_factory=dict)  # over the good message's
    reason: str = ""  # a piece of the expected motcua-last-error
    deliveries: int = 1


SHAPES = [
    Shape("ok", "processed", handled=True),
    Shape("attempt-abc", "parked", headers={ATTEMPT_HEADER: "abc"}, reason=ATTEMPT_HEADER),
    Shape("attempt-negative", "parked", headers={ATTEMPT_HEADER: -10}, reason=ATTEMPT_HEADER),
    Shape("attempt-huge", "parked", headers={ATTEMPT_HEADER: 2**63 - 1}, reason=ATTEMPT_HEADER),
    Shape("attempt-bytes", "parked", headers={ATTEMPT_HEADER: b"1"}, reason=ATTEMPT_HEADER),
    Shape("attempt-decimal", "parked", headers={ATTEMPT_HEADER: Decimal("1.5")}, reason=ATTEMPT_HEADER),
    Shape("attempt-bool", "parked", headers={ATTEMPT_HEADER: True}, reason=ATTEMPT_HEADER),
    Shape("id-10kb", "parked", headers={"message-id": "i" * 10240}, reason="message id is 10240 bytes long"),
    Shape("id-not-utf8", "parked", headers={"message-id": b"\xff\xfe\xfd-id"}, reason="message id is not UTF-8"),
    Shape("id-cloudevents-not-utf8", "parked", headers={"cloudEvents:id": b"\xc3\x28"},
          reason="message id is not UTF-8"),
    Shape("id-int", "parked", headers={"message-id": 12345}, reason="message id is"),
    Shape("id-missing", "parked", headers={"message-id": None}, reason="message has no id"),
    # The AMQP message-id property (a short string) is not where motcua looks for the id, but
    # py-amqp decodes it, and used to fail the whole connection on bytes that are not UTF-8.
    Shape("property-id-not-utf8", "processed", handled=True, properties={"message_id": b"\xff\xfe"}),
    Shape("content-type-not-utf8", "parked", properties={"content_type": b"\xffapplication/json"},
          reason="content type"),
    Shape("text-plain", "parked", properties={"content_type": "text/plain"}, reason="content type 'text/plain'"),
    Shape("body-not-json", "parked", body=b"{not json", reason="body is not JSON"),
    Shape("body-not-utf8", "parked", body=b"\xff\xfe\x00{}garbage", properties={"content_encoding": None},
          reason="body is not UTF-8"),
    Shape("body-not-utf8-said-utf8", "parked", body=b"{\"a\": \"\xff\xfe\"}",
          properties={"content_encoding": "utf-8"}, reason="body is not UTF-8"),
    Shape("body-empty", "parked", body=b"", reason="body is not JSON"),
    Shape("body-1mb-garbage", "parked", body=ONE_MB_OF_GARBAGE, reason="body is not"),
    Shape("compressed", "parked", body=b"not gzip at all", headers={"compression": "application/x-gzip"},
          reason="compression"),
    Shape("no-content-type-garbage", "parked", handled=True, body=ONE_MB_OF_GARBAGE[:4096],
          properties={"content_type": None}, reason="not JSON"),
    Shape("bad-traceparent", "processed", handled=True, headers={"traceparent": b"\xff" * 60}),
    Shape("bad-header-key", "processed", handled=True, headers={b"\xff\xfe": "x"}),
    Shape("unknown-type", "parked", handled=True, headers={"motcua-work-type": "routing.teleport"},
          reason="unknown work type"),
    Shape("bad-header-key-unknown-type", "parked", handled=True,
          headers={b"\xff\xfe": b"\xff", "motcua-work-type": "routing.teleport"}, reason="unknown work type"),
    # The runtime raises before the message can be set aside: requeued once (after a pause),
    # then, redelivered and failing again, parked by the consumer's guard.
    Shape("explode", "parked", deliveries=2, reason="could not be processed or set aside"),
]


def message(shape: Shape) -> tuple[bytes, pika.BasicProperties]:
    headers = {"message-id": f"m-{uuid.uuid4()}", "motcua-work-type": OK_TYPE, "traceparent": new_traceparent(),
               "test-tag": shape.tag, **shape.headers}
    headers = {key: value for key, value in headers.items() if value is not None}
    properties = {"content_type": "application/json", "content_encoding": "binary", "delivery_mode": 2,
                  "headers": headers, **shape.properties}
    return shape.body, pika.BasicProperties(**properties)


class Worker:
    """poison_worker.py as a process; stdout until READY, stderr (its JSON log lines) to a file."""

    def __init__(self, amqp_uri: str, area: str, tmp: Path):
        self.seen_file = tmp / "seen.jsonl"
        self.stderr_path = tmp / "worker.stderr"
        env = {**os.environ, "MOTCUA_AMQP_URI": amqp_uri, "MOTCUA_AREAS": area,
               "MOTCUA_DATA_DIR": str(tmp / "data"), "MOTCUA_RETRY_DELAYS_MS": DELAYS_MS,
               "MOTCUA_PREFETCH_COUNT": "10", "MOTCUA_LOG_LEVEL": "INFO", "POISON_SEEN_FILE": str(self.seen_file)}
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, str(WORKER)], env=env, stdout=subprocess.PIPE,
                                        stderr=self._stderr)
        ready = threading.Event()

        def watch() -> None:
            for line in self.process.stdout:
                if line.startswith(b"READY"):
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise AssertionError(f"worker did not start: {self.stderr_path.read_text()[-3000:]}")

    def seen(self) -> list[dict]:
        if not self.seen_file.exists():
            return []
        return [json.loads(line) for line in self.seen_file.read_text().splitlines() if line]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._stderr.close()
        return self.process.returncode

    def log_lines(self) -> list[bytes]:
        return self.stderr_path.read_bytes().splitlines()


def counts(channel, queue: str) -> dict[str, int]:
    names = [queue, f"{queue}.dlq", *(topology.retry_queue_name(queue, n) for n in (1, 2))]
    return {name: channel.queue_declare(name, passive=True).method.message_count for name in names}


def text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def test_every_poison_message_ends_processed_or_parked_once_and_nothing_loops(vhost_uri, tmp_path):
    area = f"p{uuid.uuid4().hex[:10]}"
    queue = topology.queue_name("routing", area)
    worker = Worker(vhost_uri, area, tmp_path)
    connection = pika.BlockingConnection(pika.URLParameters(vhost_uri))
    channel = connection.channel()
    try:
        channel.confirm_delivery()
        for shape in SHAPES:
            body, properties = message(shape)
            channel.basic_publish(topology.WORK_EXCHANGE.name, queue, body, properties, mandatory=True)

        parked = [s for s in SHAPES if s.outcome == "parked"]
        processed = {s.tag for s in SHAPES if s.outcome == "processed"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            handled = {seen["tag"] for seen in worker.seen() if seen["where"] == "handler"}
            if counts(channel, queue)[f"{queue}.dlq"] >= len(parked) and processed <= handled:
                break
            time.sleep(0.2)
    finally:
        returncode = worker.stop()

    try:
        # The queue drained (the worker is gone: anything it held unacknowledged is back in it).
        assert counts(channel, queue) == {queue: 0, f"{queue}.dlq": len(parked),
                                          f"{queue}.retry.1": 0, f"{queue}.retry.2": 0}
        assert returncode == 0, worker.stderr_path.read_text()[-3000:]

        # Every message was delivered a bounded number of times: no loop.
        seen = worker.seen()
        for shape in SHAPES:
            reached_runtime = [s for s in seen if s["where"] == "runtime" and s["tag"] == shape.tag]
            reached_handler = [s for s in seen if s["where"] == "handler" and s["tag"] == shape.tag]
            assert len(reached_runtime) == shape.deliveries, (shape.tag, len(reached_runtime))
            assert len(reached_handler) == (1 if shape.handled else 0), (shape.tag, len(reached_handler))

        # The operator's listing reads every parked poison message (and leaves them parked).
        listed = operate.list_parked(vhost_uri, queue, limit=100)
        assert len(listed) == len(parked)
        assert all(p.last_error and p.origin_queue == queue and p.attempt >= 1 for p in listed)

        # Each parked message is in the .dlq exactly once, intact, with the reason.
        sent = {shape.tag: message(shape)[0] for shape in SHAPES}
        in_dlq: dict[str, int] = {}
        while True:
            method, properties, body = channel.basic_get(f"{queue}.dlq", auto_ack=True)
            if method is None:
                break
            headers = properties.headers or {}
            tag = text(headers.get("test-tag"))
            in_dlq[tag] = in_dlq.get(tag, 0) + 1
            shape = next(s for s in SHAPES if s.tag == tag)
            reason = text(headers.get("motcua-last-error", ""))
            assert shape.reason and shape.reason in reason, (tag, reason)
            assert 0 < len(reason) <= LAST_ERROR_LIMIT, (tag, len(reason))
            assert text(headers.get("motcua-origin-queue")) == queue, tag
            assert body == sent[tag], tag
        assert in_dlq == {shape.tag: 1 for shape in parked}
    finally:
        connection.close()

    # No log line quotes a message at length (a 10 KB id, a 1 MB body), nor did kombu drop one.
    lines = worker.log_lines()
    assert lines, "the worker wrote no log at all"
    assert max(len(line) for line in lines) <= LINE_LIMIT
    assert not [line for line in lines if b"decode message body" in line]
    assert not [line for line in lines if b"i" * 1000 in line]


def test_py_amqp_keeps_properties_that_are_not_utf8_as_bytes_instead_of_failing_the_connection(vhost_uri):
    """What DeliveryConsumer installs: without it, py-amqp raises UnicodeDecodeError out of
    drain_events, which killed the nameko container (and, restarted, it met the message again)."""
    receiving.tolerate_undecodable_properties()
    receiving.tolerate_undecodable_properties()  # idempotent
    queue = f"receiving-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(vhost_uri))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, auto_delete=True)
        channel.basic_publish("", queue, b"odd", pika.BasicProperties(
            message_id=b"\xff\xfe", content_type=b"\xffjson", type=b"\xc3\x28", headers={"k": b"\xff"}))
        channel.basic_publish("", queue, b"plain", pika.BasicProperties(message_id="m-1", content_type="text/plain"))
        got = []
        with Connection(vhost_uri) as kombu_connection, kombu_connection.Consumer(
                KombuQueue(queue, no_declare=True), on_message=lambda m: (got.append(m), m.ack())):
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                kombu_connection.drain_events(timeout=1)
    finally:
        connection.close()
    odd, plain = got
    assert odd.body == b"odd" and odd.properties["message_id"] == b"\xff\xfe"
    assert odd.content_type == b"\xffjson" and odd.properties["type"] == b"\xc3\x28"
    assert odd.headers == {"k": b"\xff"}
    assert plain.properties["message_id"] == "m-1" and plain.content_type == "text/plain"


def test_when_even_parking_fails_the_message_is_requeued_after_growing_pauses_and_never_dropped(vhost_uri, tmp_path):
    """The runtime fails on the message before it can be set aside, and the guard cannot park it
    either (its .dlq was redeclared non-durable, so declaring it durable fails): the message goes
    back to its queue again and again — but after 0.5 s, 1 s, 2 s…, not thousands of times a
    second — and it is still there when the worker stops."""
    area = f"p{uuid.uuid4().hex[:10]}"
    queue = topology.queue_name("routing", area)
    worker = Worker(vhost_uri, area, tmp_path)
    connection = pika.BlockingConnection(pika.URLParameters(vhost_uri))
    channel = connection.channel()
    try:
        channel.queue_delete(f"{queue}.dlq")
        channel.queue_declare(f"{queue}.dlq", durable=False)
        channel.confirm_delivery()
        body, properties = message(Shape("explode", "parked"))
        channel.basic_publish(topology.WORK_EXCHANGE.name, queue, body, properties, mandatory=True)

        def deliveries() -> int:
            return len([s for s in worker.seen() if s["where"] == "runtime"])

        deadline = time.monotonic() + 60
        while deliveries() < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a looping consumer would deliver it thousands of times meanwhile
    finally:
        returncode = worker.stop()
    try:
        delivered = deliveries()
        assert 3 <= delivered <= 6, delivered
        assert returncode == 0
        # Never dropped: back in its queue; nothing in the (broken) .dlq.
        assert counts(channel, queue)[queue] == 1
        assert channel.queue_declare(f"{queue}.dlq", passive=True).method.message_count == 0
    finally:
        connection.close()
    logged = [json.loads(line) for line in worker.log_lines() if line.startswith(b"{")]
    pauses = [record["delay_s"] for record in logged if record["message"] == "message requeued after a pause"]
    assert pauses[:3] == [0.5, 1.0, 2.0]
    assert [record for record in logged if record["message"] == "message could not be parked either"]
