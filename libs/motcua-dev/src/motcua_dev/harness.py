"""A whole platform for tests and benchmarks: a private RabbitMQ vhost, the services as processes
(as ``make run`` starts them) and an independent event subscriber (pika, its own queue bound to
``motcua.events``), which is how the provincial data platform would see motcua."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika

from motcua.messaging.envelope import HEADER_PREFIX
from motcua.messaging.topology import EVENTS_EXCHANGE
from motcua_dev import infra
from motcua_dev.devstack import ProcessSpec, Stack
from motcua_dev.platform import API_PORTS, api_spec, platform_specs
from motcua_dev.signing_env import signing_environment


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
    area: str
    routing_key: str
    body: bytes
    headers: dict
    at: float = 0.0  # arrival, time.monotonic() of the collecting process


@dataclass
class EventCollector:
    """Subscribes its own queue to the public events (every one, or those of ``bindings``, topic
    patterns of ``<area>.<event-type>``) and keeps what arrives. It reconnects when the broker
    goes away. By default its queue is exclusive (gone with the connection, so what is published
    while it reconnects is missed); with ``durable`` it is a named durable queue (deleted at
    :meth:`stop`, or by the broker after 10 idle minutes), which keeps persistent events across a
    broker restart, so the collector misses nothing."""

    amqp_uri: str
    bindings: tuple[str, ...] = ("#",)
    durable: bool = False
    events: list[SeenEvent] = field(default_factory=list)
    reconnects: int = 0  # connections made again after the first
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> EventCollector:
        self._queue = f"motcua.test.collector.{uuid.uuid4().hex[:10]}" if self.durable else ""
        self._thread = threading.Thread(target=self._run, name="event-collector", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("event collector did not start")
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._collect()
                return
            except pika.exceptions.AMQPError:  # the broker went away (or is not back yet): again
                self._stop.wait(0.5)

    def _collect(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
        if self._ready.is_set():
            self.reconnects += 1
        try:
            channel = connection.channel()
            channel.exchange_declare(EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
            if self.durable:
                queue = channel.queue_declare(self._queue, durable=True,
                                              arguments={"x-expires": 600_000}).method.queue
            else:
                queue = channel.queue_declare("", exclusive=True).method.queue
            for pattern in self.bindings:
                channel.queue_bind(queue, EVENTS_EXCHANGE.name, routing_key=pattern)
            self._ready.set()
            while not self._stop.is_set():
                for method, properties, body in channel.consume(queue, inactivity_timeout=0.2):
                    if method is None:
                        break
                    self._keep(method, properties, body)
                    channel.basic_ack(method.delivery_tag)
            channel.cancel()
            if self.durable:
                channel.queue_delete(queue)
        finally:
            if connection.is_open:
                connection.close()

    def _keep(self, method, properties, body: bytes) -> None:
        arrived = time.monotonic()
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in (properties.headers or {}).items()}
        seen = SeenEvent(id=headers.get(f"{HEADER_PREFIX}id", ""),
                         type=headers.get(f"{HEADER_PREFIX}type", ""),
                         subject=headers.get(f"{HEADER_PREFIX}subject", ""),
                         area=headers.get(f"{HEADER_PREFIX}area", ""),
                         routing_key=method.routing_key, body=body, headers=headers, at=arrived)
        with self._lock:
            self.events.append(seen)
            self._lock.notify_all()

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

    def seen(self, event_type: str = "") -> list[SeenEvent]:
        """A copy of what arrived so far (of one type, if given), in arrival order."""
        with self._lock:
            return [e for e in self.events if not event_type or e.type == event_type]

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


def journey(steps: int) -> dict[str, int]:
    """The public events of one dossier's journey through a process of ``steps`` steps with one
    signing round (sign then seal) when the officials of OfficialsAtWork handle it, each with how
    many distinct events of its type the journey makes."""
    return {
        "vn.motcua.dossier.received.v1": 1,
        "vn.motcua.dossier.form_issued.v1": 2,  # form 01 by intake's worker, form 05 by routing's once returned
        "vn.motcua.dossier.assigned.v1": steps - 1,  # each step as it becomes active; the signing round seals
        "vn.motcua.dossier.step_completed.v1": steps,
        "vn.motcua.dossier.signing_requested.v1": 1,
        "vn.motcua.document.signed.v1": 1,
        "vn.motcua.dossier.result_ready.v1": 1,
        "vn.motcua.dossier.returned.v1": 1,
        "vn.motcua.dossier.archived.v1": 1,
        "vn.motcua.notification.sent.v1": 3,  # received, result ready, returned
    }


# Sample procedures of every level (services/intake/catalog/thanh-hoa): their required components
# (a sample request sends one document for each, the first ``documents`` of them) and the steps of
# their process.
SAMPLE_PROCEDURES: dict[str, tuple[tuple[str, ...], int]] = {
    "1.004616": (("don-de-nghi", "ban-ve"), 7),  # building permit, district: receive … return
    "1.001193": (("to-khai", "giay-chung-sinh"), 5),  # birth registration, commune
    "1.001776": (("to-khai",), 7),  # social allowance: commune → district (review, approve, sign) → commune
    "1.004227": (("don-dang-ky-bien-dong", "giay-chung-nhan"), 5),  # land change, province office
}
# The journey with the building permit, the procedure most tests use.
JOURNEY: dict[str, int] = journey(SAMPLE_PROCEDURES["1.004616"][1])
ARCHIVED = "vn.motcua.dossier.archived.v1"


def sample_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, text)
    return bytes(pdf.output())


def sample_request(unit: str, n: int, documents: int = 2, procedure_code: str = "1.004616"):
    """A submission of one of the :data:`SAMPLE_PROCEDURES` to ``unit`` (its slug) as an agency's
    client would make it (generated stubs, stock grpcio), with its first ``documents`` components."""
    from motcua.intake.v1 import intake_pb2
    from motcua.types.v1 import types_pb2

    return intake_pb2.SubmitDossierRequest(
        request_id=str(uuid.uuid4()), procedure_code=procedure_code, receiving_unit=unit,
        applicant=types_pb2.Applicant(full_name=f"Công dân {n}", identity_number=f"038{n:09d}",
                                      email=f"cong.dan.{n}@example.vn"),
        documents=[intake_pb2.Document(name=f"tai-lieu-{i + 1}.pdf", media_type="application/pdf",
                                       content=sample_pdf(f"Tai lieu {i + 1} cua ho so {n}"),
                                       component=component)
                   for i, component in enumerate(SAMPLE_PROCEDURES[procedure_code][0][:documents])])


def submit_all(address: str, requests: list, threads: int = 8) -> list:
    import grpc

    from motcua.intake.v1 import intake_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda r: stub.SubmitDossier(r, timeout=60), requests))


def journeys_complete(codes: set[str] | dict[str, dict[str, int]]) -> Callable[[list[SeenEvent]], bool]:
    """Every dossier has made at least every event of its journey (:data:`JOURNEY`, or the one a
    dict gives per code). Archived alone is not enough before counting: notify may still be sending
    the result's notifications when the package is stored (the services run in parallel)."""
    expected = codes if isinstance(codes, dict) else dict.fromkeys(codes, JOURNEY)

    def done(events: list[SeenEvent]) -> bool:
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for event in events:
            if event.subject in expected:
                ids[event.subject, event.type].add(event.id)
        return all(len(ids[code, kind]) >= n for code, wanted in expected.items() for kind, n in wanted.items())
    return done


def archived(codes: set[str]) -> Callable[[list[SeenEvent]], bool]:
    def done(events: list[SeenEvent]) -> bool:
        return codes <= {e.subject for e in events if e.type == ARCHIVED}
    return done


SUPPLEMENT_REQUESTED = 5  # status: waiting for the applicant's supplement
SUPPLEMENT_REASON = "Thành phần hồ sơ chưa đầy đủ theo quy định"
SUPPLEMENT_DAYS = 5  # the applicant's time to supplement, in calendar days
# What an official does with a task of each role: move it on (the signer approves the draft, which
# sends it to signing; the seal is applied by the same signing round; the desk returns the result).
OFFICIAL_ACTIONS = {"receive": "complete", "assign": "complete", "review": "complete", "approve": "complete",
                    "sign": "approve", "return": "return_result"}


class OfficialsAtWork:
    """The officials of some units, played through the RoutingService API with a stock grpcio
    client: every so often each unit's open tasks are listed (earliest deadline first) and moved on
    as :data:`OFFICIAL_ACTIONS` says; the reviewer of a dossier in :attr:`supplements` first asks
    its applicant for a supplement (form 02); a dossier in :attr:`held` is left where it is. This
    is how e2e tests, benchmarks and the demo stand in for people at their desks; it never touches
    a store or a queue."""

    def __init__(self, address: str, units: list[str], interval: float = 0.1, desks: int = 8):
        self.address = address
        self.units = list(units)
        self.interval = interval
        # officials acting at once: each round's tasks are acted on by this many threads, as a
        # unit's staff work side by side (one at a time, the stand-in had become the bottleneck of
        # every run with more than a few dossiers in flight)
        self.desks = desks
        # dossier code → the components its reviewer asks the applicant for (form 02) before
        # completing the review; the review is completed once the applicant has supplied them
        self.supplements: dict[str, tuple[str, ...]] = {}
        # dossiers whose officials hold them where they are (a step left to run late)
        self.held: set[str] = set()
        self.acted: dict[str, int] = defaultdict(int)  # action → calls that changed something
        # (code, action, sent, answered) on time.monotonic() of each call that changed something:
        # when a dossier waited for an official (benchmarks take it out of the platform's latency)
        self.calls: collections.deque[tuple[str, str, float, float]] = collections.deque(maxlen=100_000)
        self.errors: list[str] = []
        self._done: set[tuple[str, int, str]] = set()  # (code, step, action) acted on already
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> OfficialsAtWork:
        self._thread = threading.Thread(target=self._run, name="officials", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import grpc

        from motcua.routing.v1 import routing_pb2_grpc

        with grpc.insecure_channel(self.address) as channel, \
                ThreadPoolExecutor(self.desks, thread_name_prefix="official") as desks:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            while not self._stop.is_set():
                busy = False
                for unit in self.units:
                    busy |= self._work_through(stub, unit, desks)
                if not busy:
                    self._stop.wait(self.interval)

    def _work_through(self, stub, unit: str, desks: ThreadPoolExecutor) -> bool:
        import grpc

        from motcua.routing.v1 import routing_pb2

        try:
            tasks = stub.ListTasks(routing_pb2.ListTasksRequest(unit=unit, page_size=200), timeout=10).tasks
        except grpc.RpcError as error:  # the api restarting: try again on the next round
            self._note(f"ListTasks {unit}: {error.code()}")
            return False
        acts = []
        for task in tasks:
            if task.status == SUPPLEMENT_REQUESTED or task.code in self.held:  # the applicant's turn; held
                continue
            action = OFFICIAL_ACTIONS.get(task.role)
            wanted = self.supplements.get(task.code)
            asked = (task.code, task.step_index, "request_supplement") in self._done
            if task.role == "review" and wanted and not asked:
                action = "request_supplement"
            key = (task.code, task.step_index, action or "")
            if action is None or key in self._done or (action == "return_result" and task.status != 9):
                continue
            request = routing_pb2.ActRequest(
                request_id=f"{task.code}:{task.step_index}:{action}", code=task.code, action=action,
                expected_version=task.version,
                official=routing_pb2.Official(official_id=f"{task.role}-{unit}", unit=unit, roles=[task.role]))
            if action == "return_result":
                request.channel, request.receiver = "desk", "người nộp hồ sơ"
            if action == "request_supplement":
                request.reason = SUPPLEMENT_REASON
                request.components.extend(wanted or ())
                request.deadline.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=SUPPLEMENT_DAYS))
            acts.append((key, request))
        return any(list(desks.map(lambda act: self._act(stub, *act), acts)))

    def _act(self, stub, key: tuple[str, int, str], request) -> bool:
        import grpc

        code, _, action = key
        sent = time.monotonic()
        try:
            stub.Act(request, timeout=30)
        except grpc.RpcError as error:  # someone acted first (ABORTED), the api restarting: next round
            self._note(f"Act {action} {code}: {error.code()} {error.details()}")
            return False
        with self._lock:
            self.calls.append((code, action, sent, time.monotonic()))
            self._done.add(key)
            self.acted[action] += 1
        return True

    def _note(self, error: str) -> None:
        with self._lock:
            self.errors.append(error)
            del self.errors[:-100]  # the latest are enough to explain a failed wait


def supply_supplement(intake_address: str, code: str, procedure_code: str, timeout: float = 60):
    """The applicant answers a supplement request through ``IntakeService.SupplementDossier`` with
    one document of the procedure's last sample component, once intake has recorded the request
    (status 5, from routing's ``dossier.supplement_requested``). Returns the dossier as intake
    answers."""
    import grpc

    from motcua.intake.v1 import intake_pb2, intake_pb2_grpc

    component = SAMPLE_PROCEDURES[procedure_code][0][-1]
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(intake_address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        while stub.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10).dossier.status \
                != SUPPLEMENT_REQUESTED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"intake did not record the supplement request of {code} in {timeout:.0f}s")
            time.sleep(0.2)
        return stub.SupplementDossier(intake_pb2.SupplementDossierRequest(
            request_id=f"{code}:supplement", code=code, documents=[intake_pb2.Document(
                name="bo-sung.pdf", media_type="application/pdf", content=sample_pdf(f"Bo sung ho so {code}"),
                component=component)]), timeout=30).dossier


def active_step_deadline(routing_address: str, code: str, ready: Callable[[Any], bool] = lambda timeline: True,
                         timeout: float = 60) -> dt.datetime:
    """The deadline of the dossier's active step, as ``RoutingService.GetTimeline`` shows it once
    ``ready(timeline)`` (e.g. routing has taken the applicant's supplement back)."""
    import grpc

    from motcua.protobufs import datetime_of
    from motcua.routing.v1 import routing_pb2, routing_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(routing_address) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        while True:
            try:
                timeline = stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code), timeout=10)
                if timeline.rows and ready(timeline):
                    return datetime_of(timeline.rows[-1].step_deadline)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:  # not opened yet: wait
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"the timeline of {code} did not get there in {timeout:.0f}s")
            time.sleep(0.2)


def back_from_the_applicant(timeline) -> bool:
    """Routing has taken the supplement back: processing (4) again, its row last."""
    return timeline.status == 4 and timeline.rows[-1].action == "supplement_received"


# -- the one-stop desk's forms (Circular 01/2018/TT-VPCP), as the archive and routing serve them --

# The file names the services give their forms: mau-01-<code>.pdf (intake), phieu-…-02.pdf (routing)
_FORM_NUMBER = re.compile(r"^mau-(0\d)-|-(0\d)\.pdf$")


@dataclass(frozen=True)
class ArchivedForm:
    number: str  # "01" … "06"; "" for a form without a number (the stop notice)
    name: str  # the name the issuing service gave it
    path: str  # inside the bag, e.g. data/forms/02-….pdf
    data: bytes


def package_forms(archive_address: str, code: str) -> list[ArchivedForm]:
    """The forms in a dossier's archival package: the package is downloaded through
    ``ArchiveService.GetDownloadUrl`` (a stock grpcio client) and read as a BagIt tar; its Decree
    30 metadata names each file of role ``form``."""
    import grpc

    from motcua.archive.v1 import archive_pb2, archive_pb2_grpc

    with grpc.insecure_channel(archive_address) as channel:
        url = archive_pb2_grpc.ArchiveServiceStub(channel).GetDownloadUrl(
            archive_pb2.GetDownloadUrlRequest(code=code), timeout=10).url
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - the archive's own presigned URL
        package = answer.read()
    with tarfile.open(fileobj=io.BytesIO(package)) as tar:
        def member(path: str) -> bytes:
            extracted = tar.extractfile(f"{code}/{path}")
            assert extracted is not None, path
            return extracted.read()

        metadata = json.loads(member("data/metadata/decree30.json"))
        forms = []
        for document in metadata["documents"]:
            if document["role"] == "form":
                found = _FORM_NUMBER.search(document["summary"])
                number = next((g for g in found.groups() if g), "") if found else ""
                forms.append(ArchivedForm(number, document["summary"], document["path"], member(document["path"])))
        return forms


def register_of_the_day(routing_address: str, unit: str, day: dt.date | None = None) -> tuple[list, bytes]:
    """Form 06 of ``unit`` for one local day (today by default): every row of the register (all
    its pages) and the first page as the sealed PDF ``RoutingService.GetRegister`` renders."""
    import grpc

    from motcua.routing.v1 import routing_pb2, routing_pb2_grpc
    from motcua.worktime import VN_TZ

    day = day or dt.datetime.now(VN_TZ).date()
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=VN_TZ)  # the RPC reads the instants' local dates
    rows: list = []
    first_pdf, token = b"", ""
    with grpc.insecure_channel(routing_address) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        while True:
            request = routing_pb2.GetRegisterRequest(unit=unit, page_size=1000, page_token=token,
                                                     format=routing_pb2.REGISTER_FORMAT_PDF)
            request.period_start.FromDatetime(noon)
            request.period_end.FromDatetime(noon)
            page = stub.GetRegister(request, timeout=60)
            rows += page.rows
            first_pdf = first_pdf or page.document
            token = page.next_page_token
            if not token:
                return rows, first_pdf


def pdfsig(path: Path, *options: str) -> list[dict[str, str]]:
    """What poppler's ``pdfsig`` (Debian poppler-utils) says of each signature of a PDF, in order:
    one dict per signature, its lines by label (``Signature Field Name``, ``Signature Validation``,
    ``Certificate Validation``, ``Signer Certificate Common Name``...; a bare line such as ``Not
    total document signed`` maps to ""). ``options`` e.g. ``-nssdir sql:DIR``
    (:func:`motcua_dev.pki.dev_nss_trust_store`) or ``-nocert``."""
    binary = shutil.which("pdfsig")
    if binary is None:
        raise RuntimeError("pdfsig is missing: apt-get install poppler-utils")
    out = subprocess.run([binary, *options, str(path)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"pdfsig {path}: {out.stderr.strip()}")
    signatures: list[dict[str, str]] = []
    for line in out.stdout.splitlines():
        if re.match(r"^Signature #\d+:$", line):
            signatures.append({})
        elif (m := re.match(r"^\s+- ([^:]+): (.*)$", line)) and signatures:
            signatures[-1][m.group(1)] = m.group(2)
        elif (m := re.match(r"^\s+- (.*)$", line)) and signatures:
            signatures[-1][m.group(1)] = ""
    return signatures


@dataclass
class Platform:
    stack: Stack
    env: dict[str, str]
    data_dir: Path
    intake_address: str
    routing_address: str
    events: EventCollector
    officials: OfficialsAtWork | None = None
    signing_address: str = ""
    archive_address: str = ""
    notify_address: str = ""  # SubscriptionService
    mail: Any = None  # motcua_dev.mailbox.SmtpSink: the e-mails notify delivered, counted where they land
    sms: Any = None  # motcua_dev.mailbox.SmsGatewayStandIn

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
        if self.officials is not None:
            lines.append(f"officials acted {dict(self.officials.acted)}; last errors {self.officials.errors[-5:]}")
        lines += [f"--- {name}\n{self.stack.tail(name, 8)}" for name in self.stack.specs]
        return "\n".join(lines)

    def metrics(self, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """A scrape of process ``name``'s /metrics: (series name, sorted labels) → value."""
        from motcua_dev.platform import metrics_urls, scrape

        return scrape(metrics_urls(self.stack)[name])

    def move_clock(self, offset_s: float, extra_env: dict[str, str] | None = None) -> None:
        """The platform's time moves to now + ``offset_s`` (:func:`motcua_dev.platform.move_clock`)."""
        from motcua_dev.platform import move_clock

        move_clock(self.stack, offset_s, extra_env)
        self.env.update({"MOTCUA_CLOCK_OFFSET_S": f"{offset_s:.3f}", **(extra_env or {})})

    def extra_api(self, service: str, name: str, extra_env: dict[str, str]) -> tuple[ProcessSpec, str]:
        """Another api process of ``service`` on a free port (e.g. one with a fault injected)."""
        port = infra.free_port()
        return api_spec(service, {**self.env, **extra_env}, port, name=name), f"127.0.0.1:{port}"


def sample_units() -> tuple[str, ...]:
    """Every unit of the sample catalog: whose officials the test platform's OfficialsAtWork plays
    unless told otherwise (its workers serve every area, as ``make run``'s do)."""
    from motcua.areas import read_units
    from motcua.settings import SAMPLE_CATALOG

    return tuple(sorted(read_units(SAMPLE_CATALOG)))


@contextlib.contextmanager
def running_platform(workdir: Path, amqp_uri: str, s3_env: dict[str, str],
                     extra_env: dict[str, str] | None = None, echo: bool = False,
                     officials: tuple[str, ...] | None = (), vhost: bool = True,
                     durable_events: bool = False) -> Iterator[Platform]:
    """Every service as processes, on a private vhost, with an event collector subscribed first
    and, unless ``officials`` is None, the officials of those units (by default: of every unit) at
    work. ``vhost=False`` uses the URI's own vhost instead of a private one (a broker of the
    test's own, e.g. :func:`motcua.testing.private_rabbitmq`, whose vhost ``rabbitmqctl`` on the
    default node cannot create); ``durable_events`` gives the collector a durable queue, which
    keeps the events published while the broker restarts."""
    with (private_vhost(amqp_uri) if vhost else contextlib.nullcontext(amqp_uri)) as vhost_uri:
        data_dir = workdir / "data"
        env = {"MOTCUA_AMQP_URI": vhost_uri, "MOTCUA_DATA_DIR": str(data_dir),
               # A writer publishes within half the grace, the relay after it: on a loaded 2-core
               # machine a publish can take longer than 0.5 s, so 1 s let the relay publish an entry
               # its writer was still confirming (seen once at the e2e subscriber). 3 s keeps the
               # documented window far away and the relay's catch-up after a crash quick.
               "MOTCUA_RETRY_DELAYS_MS": "200,1000,3000", "MOTCUA_OUTBOX_GRACE_S": "3",
               "MOTCUA_PKI_DIR": str(workdir / "pki"),
               # No due-soon warnings: a journey's events must not depend on the hour the test runs
               # (the receive step's 6 working hours are "due soon" from the moment it opens).
               "MOTCUA_SLA_DUE_SOON_HOURS": "0", **s3_env, **(extra_env or {})}
        from motcua_dev.mailbox import SmsGatewayStandIn, SmtpSink

        # notify's providers, in this process: tests count deliveries where they land
        mail = SmtpSink(workdir / "mail").start()
        sms = SmsGatewayStandIn(workdir / "sms").start()
        env = {"MOTCUA_NOTIFY_SMTP_PORT": str(mail.port), "MOTCUA_NOTIFY_SMS_URL": sms.url,
               "MOTCUA_NOTIFY_EMAIL_RETRY_S": "0.5,1,2,4,8,8,8", "MOTCUA_NOTIFY_SMS_RETRY_S": "0.5,1,2,4,8,8,8",
               "MOTCUA_NOTIFY_SENDING_LEASE_S": "5", "MOTCUA_NOTIFY_DUE_INTERVAL_S": "0.25",
               "MOTCUA_NOTIFY_WEBHOOK_RETRY_S": "0.5,1,2,4,8,8,8", "MOTCUA_NOTIFY_WEBHOOK_ALLOW_HTTP": "true",
               "MOTCUA_NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true", **env}
        ports = {service: infra.free_port() for service in API_PORTS}
        # intake and routing seal every form through the signing api (ready before any dossier is sent)
        env["MOTCUA_SIGNING_ADDRESS"] = f"127.0.0.1:{ports['signing']}"
        # the signing keys in a SoftHSM2 token of the platform's own, certified by a development
        # PKI served from this process (every catalog unit's seal and the roster's officials)
        signing = signing_environment(workdir / "pki", workdir / "softhsm", env=env)
        env.update(signing.__enter__())
        events = EventCollector(vhost_uri, durable=durable_events).start()
        stack = Stack(platform_specs(env, ports), workdir / "logs", echo=echo)
        desk = None
        try:
            with stack:  # starts every process; stops them all on the way out
                stack.wait_ready(timeout=120)
                routing = f"127.0.0.1:{ports['routing']}"
                units = list(officials or sample_units()) if officials is not None else []
                desk = OfficialsAtWork(routing, units).start() if officials is not None else None
                yield Platform(stack, env, data_dir, f"127.0.0.1:{ports['intake']}", routing, events, desk,
                               signing_address=f"127.0.0.1:{ports['signing']}" if "signing" in ports else "",
                               archive_address=f"127.0.0.1:{ports['archive']}" if "archive" in ports else "",
                               notify_address=f"127.0.0.1:{ports['notify']}" if "notify" in ports else "",
                               mail=mail, sms=sms)
        finally:
            if desk is not None:
                desk.stop()
            events.stop()
            mail.stop()
            sms.stop()
            signing.__exit__(None, None, None)
