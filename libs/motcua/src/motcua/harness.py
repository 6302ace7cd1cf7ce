"""A whole platform for tests and benchmarks: a private RabbitMQ vhost, the services as processes
(as ``make run`` starts them) and an independent event subscriber (pika, its own queue bound to
``motcua.events``), which is how the provincial data platform would see motcua."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pika

from motcua import infra
from motcua.devstack import ProcessSpec, Stack
from motcua.messaging.envelope import HEADER_PREFIX
from motcua.messaging.topology import EVENTS_EXCHANGE
from motcua.platform import api_spec, platform_specs


@contextlib.contextmanager
def private_vhost(amqp_uri: str, prefix: str = "motcua-test") -> Iterator[str]:
    """A RabbitMQ vhost of our own (so a running ``make run`` never sees test messages); yields
    the AMQP URI that selects it, and deletes the vhost at the end."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    parts = urlsplit(amqp_uri)
    user = parts.username or "guest"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    try:
        yield urlunsplit(parts._replace(path="/" + quote(name, safe="")))
    finally:
        _rabbitmqctl("delete_vhost", name)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@dataclass
class SeenEvent:
    id: str
    type: str
    subject: str
    district: str
    routing_key: str
    body: bytes
    headers: dict


@dataclass
class EventCollector:
    """Subscribes its own exclusive queue to every public event and keeps what arrives."""

    amqp_uri: str
    events: list[SeenEvent] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> EventCollector:
        self._thread = threading.Thread(target=self._run, name="event-collector", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("event collector did not start")
        return self

    def _run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
        channel = connection.channel()
        channel.exchange_declare(EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, EVENTS_EXCHANGE.name, routing_key="#")
        self._ready.set()
        while not self._stop.is_set():
            for method, properties, body in channel.consume(queue, inactivity_timeout=0.2):
                if method is None:
                    break
                headers = {k: (v.decode() if isinstance(v, bytes) else v)
                           for k, v in (properties.headers or {}).items()}
                seen = SeenEvent(id=headers.get(f"{HEADER_PREFIX}id", ""),
                                 type=headers.get(f"{HEADER_PREFIX}type", ""),
                                 subject=headers.get(f"{HEADER_PREFIX}subject", ""),
                                 district=headers.get(f"{HEADER_PREFIX}district", ""),
                                 routing_key=method.routing_key, body=body, headers=headers)
                with self._lock:
                    self.events.append(seen)
                    self._lock.notify_all()
                channel.basic_ack(method.delivery_tag)
        channel.cancel()
        connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_until(self, predicate: Callable[[list[SeenEvent]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 1.0))
            return True

    def by_subject(self) -> dict[str, list[SeenEvent]]:
        with self._lock:
            grouped: dict[str, list[SeenEvent]] = defaultdict(list)
            for event in self.events:
                grouped[event.subject].append(event)
            return grouped

    def distinct_types(self, subject: str) -> dict[str, int]:
        """Event type → number of distinct event ids (a redelivered copy counts once)."""
        ids: dict[str, set[str]] = defaultdict(set)
        for event in self.by_subject().get(subject, []):
            ids[event.type].add(event.id)
        return {t: len(i) for t, i in ids.items()}

    def count(self, event_type: str) -> int:
        with self._lock:
            return len({e.id for e in self.events if e.type == event_type})


# The public events of one dossier's journey through the skeleton, each with how many distinct
# events of its type the journey makes.
JOURNEY: dict[str, int] = {
    "vn.motcua.dossier.received.v1": 1,
    "vn.motcua.dossier.assigned.v1": 5,  # receive, review, approve, sign, return
    "vn.motcua.dossier.step_completed.v1": 5,
    "vn.motcua.dossier.signing_requested.v1": 1,
    "vn.motcua.document.signed.v1": 1,
    "vn.motcua.dossier.result_ready.v1": 1,
    "vn.motcua.dossier.returned.v1": 1,
    "vn.motcua.dossier.archived.v1": 1,
    "vn.motcua.notification.sent.v1": 3,  # received, result ready, returned
}
ARCHIVED = "vn.motcua.dossier.archived.v1"


def sample_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, text)
    return bytes(pdf.output())


def sample_request(district: str, n: int, documents: int = 2):
    """A submission as an agency's client would make it (generated stubs, stock grpcio)."""
    from motcua.intake.v1 import intake_pb2
    from motcua.types.v1 import types_pb2

    return intake_pb2.SubmitDossierRequest(
        request_id=str(uuid.uuid4()), procedure_code="1.004616", district=district,
        applicant=types_pb2.Applicant(full_name=f"Công dân {n}", identity_number=f"038{n:09d}",
                                      email=f"cong.dan.{n}@example.vn"),
        documents=[intake_pb2.Document(name=f"tai-lieu-{i + 1}.pdf", media_type="application/pdf",
                                       content=sample_pdf(f"Tai lieu {i + 1} cua ho so {n}"),
                                       component="don-de-nghi" if i == 0 else "ban-ve")
                   for i in range(documents)])


def submit_all(address: str, requests: list, threads: int = 8) -> list:
    import grpc

    from motcua.intake.v1 import intake_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda r: stub.SubmitDossier(r, timeout=60), requests))


def journeys_complete(codes: set[str]) -> Callable[[list[SeenEvent]], bool]:
    """Every dossier has made at least every event of its JOURNEY. Archived alone is not enough
    before counting: notify may still be sending the result's notifications when the package is
    stored (the services run in parallel)."""
    def done(events: list[SeenEvent]) -> bool:
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for event in events:
            if event.subject in codes:
                ids[event.subject, event.type].add(event.id)
        return all(len(ids[code, kind]) >= n for code in codes for kind, n in JOURNEY.items())
    return done


def archived(codes: set[str]) -> Callable[[list[SeenEvent]], bool]:
    def done(events: list[SeenEvent]) -> bool:
        return codes <= {e.subject for e in events if e.type == ARCHIVED}
    return done


@dataclass
class Platform:
    stack: Stack
    env: dict[str, str]
    data_dir: Path
    intake_address: str
    events: EventCollector

    def count(self, service: str, schema: type, filter: dict | None = None) -> int:
        """How many records a service's own store holds (read from its SQLite file)."""
        from motcua.store.sqlite import SqliteStore

        store = SqliteStore(self.data_dir / f"{service}.sqlite3")
        try:
            return store.collection(schema).count(filter or {})
        finally:
            store.close()

    def progress(self, codes: set[str]) -> str:
        """What each dossier has reached and the last log lines: the message of a failed wait."""
        lines = [f"{code}: {self.events.distinct_types(code)}" for code in sorted(codes)]
        lines += [f"--- {name}\n{self.stack.tail(name, 8)}" for name in self.stack.specs]
        return "\n".join(lines)

    def extra_api(self, service: str, name: str, extra_env: dict[str, str]) -> tuple[ProcessSpec, str]:
        """Another api process of ``service`` on a free port (e.g. one with a fault injected)."""
        port = infra.free_port()
        return api_spec(service, {**self.env, **extra_env}, port, name=name), f"127.0.0.1:{port}"


@contextlib.contextmanager
def running_platform(workdir: Path, amqp_uri: str, s3_env: dict[str, str],
                     extra_env: dict[str, str] | None = None, echo: bool = False) -> Iterator[Platform]:
    """Every service as processes, on a private vhost, with an event collector subscribed first."""
    with private_vhost(amqp_uri) as vhost_uri:
        data_dir = workdir / "data"
        env = {"MOTCUA_AMQP_URI": vhost_uri, "MOTCUA_DATA_DIR": str(data_dir),
               "MOTCUA_RETRY_DELAYS_MS": "200,1000,3000", "MOTCUA_OUTBOX_GRACE_S": "1",
               "MOTCUA_PKI_DIR": str(workdir / "pki"), **s3_env, **(extra_env or {})}
        port = infra.free_port()
        events = EventCollector(vhost_uri).start()
        stack = Stack(platform_specs(env, {"intake": port}), workdir / "logs", echo=echo)
        try:
            with stack:  # starts every process; stops them all on the way out
                stack.wait_ready(timeout=120)
                yield Platform(stack, env, data_dir, f"127.0.0.1:{port}", events)
        finally:
            events.stop()
