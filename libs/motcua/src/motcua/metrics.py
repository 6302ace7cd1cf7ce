"""Prometheus metrics of every process (``prometheus_client``), and a worker's health.

Every process started with ``MOTCUA_METRICS_PORT`` serves, over HTTP on that port:

  /metrics   the series below, plus the process's own (CPU, memory, open files, GC)
  /readyz    200 while every queue of the worker has a live consumer on the broker (an api: 200)
  /livez     200 unless a queue has had no live consumer for ``MOTCUA_CONSUMER_LOST_S``

The series (labels in brackets):

  motcua_grpc_requests_total [method, code]             calls answered, by gRPC status
  motcua_grpc_request_duration_seconds [method]         their latency (histogram)
  motcua_messages_total [queue, outcome]                deliveries handled: processed, duplicate,
                                                        retried, parked, or unsettled (raised: requeued
                                                        after a pause, or parked by the guard)
  motcua_message_duration_seconds [queue]               handling time (histogram)
  motcua_consumer_up [queue]                            1 while the queue's consumer is live
  motcua_outbox_pending [collection]                    events written but not yet published
  motcua_outbox_oldest_age_seconds [collection]         age of the oldest of them (0: none)
  motcua_timer_duration_seconds [job]                   periodic jobs (outbox relay, SLA sweep…)
  motcua_timer_failures_total [job]
  motcua_timer_items_total [job, item]                  what a job's report counted (the SLA sweep:
                                                        claimed, written, facts.overdue, facts.due_soon…)

Cost accounting (what a dossier costs, counted once where the work is done; the benchmark divides
them by the dossiers it ran):

  motcua_publishes_total [exchange]                     messages published (motcua.messaging.publisher)
  motcua_publish_confirms_total [exchange]              of them, publisher confirms waited for
  motcua_store_writes_total [backend, collection]       writes committed that changed a document
                                                        (motcua.store; not a version conflict, not a
                                                        claim that found nothing)
  motcua_store_commits_total [backend, synchronous]     SQLite transactions committed with changes, by
                                                        their ``synchronous`` (FULL, EXTRA: an fsync each)
  motcua_s3_requests_total [method]                     HTTP requests to S3 (PUT, GET, HEAD, POST…)
  motcua_pdfs_rendered_total [form]                     PDFs rendered (motcua.fonts.pdf_bytes)
  motcua_signatures_total [kind]                        signatures put into PDFs: official, seal,
                                                        document_timestamp (B-LTA)
  motcua_documents_validated_total [media_type]         PDFs whose signatures were validated (the
                                                        signing api: archive's check before ingest,
                                                        other agencies' ValidateDocument)

Metrics never fail the work they count: every recording function swallows its own errors.

An api of several server processes (:mod:`motcua.api_processes`) serves one endpoint for them all:
each server writes its series into the pod's ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode, chosen for being the client library's own, documented way to add up processes
that share nothing else), and the api's first process exposes their sum (:func:`pod_registry`):
counters and histograms summed, each gauge as its ``multiprocess_mode`` says, ``process_*`` summed
over the pod's processes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from motcua import tracing

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

GRPC_REQUESTS = Counter("motcua_grpc_requests", "gRPC calls answered, by method and status code",
                        ["method", "code"])
GRPC_SECONDS = Histogram("motcua_grpc_request_duration_seconds", "gRPC call latency", ["method"],
                         buckets=LATENCY_BUCKETS)
MESSAGES = Counter("motcua_messages", "Deliveries handled, by queue and outcome", ["queue", "outcome"])
MESSAGE_SECONDS = Histogram("motcua_message_duration_seconds", "Time to handle a delivery", ["queue"],
                            buckets=LATENCY_BUCKETS)
# Gauges say how several processes of one pod add up (prometheus_client's multiprocess mode, which an
# api with several server processes uses: motcua.api_processes): every process reads the same store,
# so the live processes' largest value; a queue is consumed while its least live consumer is.
CONSUMER_UP = Gauge("motcua_consumer_up", "1 while the queue's consumer is live on the broker", ["queue"],
                    multiprocess_mode="livemin")
OUTBOX_PENDING = Gauge("motcua_outbox_pending", "Events written but not yet published", ["collection"],
                       multiprocess_mode="livemax")
OUTBOX_OLDEST = Gauge("motcua_outbox_oldest_age_seconds", "Age of the oldest unpublished event", ["collection"],
                      multiprocess_mode="livemax")
TIMER_SECONDS = Histogram("motcua_timer_duration_seconds", "Duration of a periodic job's round", ["job"],
                          buckets=LATENCY_BUCKETS)
TIMER_FAILURES = Counter("motcua_timer_failures", "Rounds of a periodic job that failed", ["job"])
TIMER_ITEMS = Counter("motcua_timer_items", "What a periodic job's rounds counted", ["job", "item"])


def _safely(record: Callable[[], None]) -> None:
    try:
        record()
    except Exception:  # noqa: BLE001 - metrics never fail the work they count
        log.debug("metric not recorded", exc_info=True)


# -- gRPC ----------------------------------------------------------------------------------------


def rpc(method: str, behaviour: Callable, response_streaming: bool) -> Callable:
    """``behaviour`` (a grpcio method handler's function) counted and timed by status code."""

    def done(context: Any, started: float) -> None:
        def record() -> None:
            code = context.code()
            name = getattr(code, "name", None) or ("OK" if code is None else str(code))
            GRPC_REQUESTS.labels(method, name).inc()
            GRPC_SECONDS.labels(method).observe(time.perf_counter() - started)

        _safely(record)

    def unary(request: Any, context: Any) -> Any:
        started = time.perf_counter()
        with tracing.span(method, "server", _traceparent(context), {"rpc.method": method}) as span:
            try:
                return behaviour(request, context)
            finally:
                done(context, started)
                _trace_status(span, context)

    def streaming(request: Any, context: Any) -> Iterator[Any]:
        started = time.perf_counter()
        with tracing.span(method, "server", _traceparent(context), {"rpc.method": method}) as span:
            try:
                yield from behaviour(request, context)
            finally:
                done(context, started)
                _trace_status(span, context)

    return streaming if response_streaming else unary


def _traceparent(context: Any) -> str | None:
    try:
        value = dict(context.invocation_metadata() or ()).get("traceparent")
    except Exception:  # noqa: BLE001 - no parent then
        return None
    return value if isinstance(value, str) else None


def _trace_status(span: Any, context: Any) -> None:
    if span is not None:
        code = getattr(context.code(), "name", None) or "OK"
        tracing.set_attribute(span, "rpc.grpc.status_code", code)


# -- messages ------------------------------------------------------------------------------------


def message_handled(queue: str, outcome: str, seconds: float) -> None:
    def record() -> None:
        MESSAGES.labels(queue, outcome).inc()
        MESSAGE_SECONDS.labels(queue).observe(seconds)

    _safely(record)


class ConsumerHealth:
    """Whether each queue of this process has a live consumer, and since when it has not."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._down_since: dict[str, float | None] = {}
        self._lock = threading.Lock()

    def expect(self, queue: str) -> None:
        """``queue`` will be consumed: not ready until its consumer is up."""
        with self._lock:
            self._down_since.setdefault(queue, self._clock())
        _safely(lambda: CONSUMER_UP.labels(queue).set(0))

    def up(self, queue: str) -> None:
        with self._lock:
            self._down_since[queue] = None
        _safely(lambda: CONSUMER_UP.labels(queue).set(1))

    def down(self, queue: str) -> None:
        with self._lock:
            if self._down_since.get(queue) is None:
                self._down_since[queue] = self._clock()
        _safely(lambda: CONSUMER_UP.labels(queue).set(0))

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            down = sorted(q for q, since in self._down_since.items() if since is not None)
        return (not down, f"no consumer on {', '.join(down)}" if down else "consuming")

    def live(self, lost_s: float) -> tuple[bool, str]:
        now = self._clock()
        with self._lock:
            lost = sorted(q for q, since in self._down_since.items() if since is not None and now - since >= lost_s)
        return (not lost, f"no consumer for {lost_s:.0f} s on {', '.join(lost)}" if lost else "alive")


HEALTH = ConsumerHealth()


# -- outbox and periodic jobs ---------------------------------------------------------------------


def outbox_state(collection: str, pending: int, oldest_age_s: float) -> None:
    def record() -> None:
        OUTBOX_PENDING.labels(collection).set(pending)
        OUTBOX_OLDEST.labels(collection).set(max(0.0, oldest_age_s))

    _safely(record)


def timed_job(job: str, run: Callable[[], Any]) -> Any:
    """Run one round of periodic job ``job``: timed, its failure counted (and re-raised), the
    integer fields of its report (a dataclass; dicts of integers as ``field.key``) counted."""
    started = time.perf_counter()
    try:
        result = run()
    except BaseException:
        _safely(lambda: TIMER_FAILURES.labels(job).inc())
        raise
    finally:
        _safely(lambda: TIMER_SECONDS.labels(job).observe(time.perf_counter() - started))
    _safely(lambda: _count_items(job, result))
    return result


def _count_items(job: str, report: Any) -> None:
    if not dataclasses.is_dataclass(report) or isinstance(report, type):
        return
    for field in dataclasses.fields(report):
        value = getattr(report, field.name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value > 0:
            TIMER_ITEMS.labels(job, field.name).inc(value)
        elif isinstance(value, dict):
            for key, n in value.items():
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    TIMER_ITEMS.labels(job, f"{field.name}.{key}").inc(n)


# -- cost accounting -----------------------------------------------------------------------------
# One increment per choke point of the work a dossier costs (never per caller), so that a scrape
# before and after a run says what each dossier made each process do.

PUBLISHES = Counter("motcua_publishes", "Messages published, by exchange", ["exchange"])
PUBLISH_CONFIRMS = Counter("motcua_publish_confirms", "Publisher confirms waited for, by exchange",
                           ["exchange"])
STORE_WRITES = Counter("motcua_store_writes", "Writes committed that changed a document, by backend and collection",
                       ["backend", "collection"])
STORE_COMMITS = Counter("motcua_store_commits", "Transactions committed, by backend and synchronous mode "
                        "(SQLite FULL or EXTRA: an fsync each)", ["backend", "synchronous"])
S3_REQUESTS = Counter("motcua_s3_requests", "HTTP requests made to the S3 service, by method", ["method"])
PDFS_RENDERED = Counter("motcua_pdfs_rendered", "PDFs rendered, by form", ["form"])
SIGNATURES = Counter("motcua_signatures", "Signatures put into PDFs, by kind (official, seal, "
                     "document_timestamp)", ["kind"])
# Labelled like every series here: a label-less one opens its multiprocess file at import, before
# an api's parent has made PROMETHEUS_MULTIPROC_DIR (its server processes then died at start).
DOCUMENTS_VALIDATED = Counter("motcua_documents_validated", "Documents whose signatures were validated, by media "
                              "type", ["media_type"])


def published(exchange: str, confirmed: bool) -> None:
    def record() -> None:
        PUBLISHES.labels(exchange).inc()
        if confirmed:
            PUBLISH_CONFIRMS.labels(exchange).inc()

    _safely(record)


def store_written(backend: str, collection: str) -> None:
    _safely(lambda: STORE_WRITES.labels(backend, collection).inc())


def store_committed(backend: str, synchronous: str) -> None:
    _safely(lambda: STORE_COMMITS.labels(backend, synchronous).inc())


def s3_request(method: str) -> None:
    _safely(lambda: S3_REQUESTS.labels(method.upper()).inc())


def pdf_rendered(form: str) -> None:
    _safely(lambda: PDFS_RENDERED.labels(form).inc())


def signatures_made(kind: str, n: int = 1) -> None:
    _safely(lambda: SIGNATURES.labels(kind).inc(n))


def document_validated(media_type: str = "application/pdf") -> None:
    _safely(lambda: DOCUMENTS_VALIDATED.labels(media_type).inc())


# -- the HTTP endpoint ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    lost_s = 300.0
    health = HEALTH
    registry: CollectorRegistry = REGISTRY

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif path in ("/readyz", "/livez"):
            ok, why = self.health.ready() if path == "/readyz" else self.health.live(self.lost_s)
            self._answer(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._answer(404, b"not found: /metrics, /readyz, /livez\n", "text/plain; charset=utf-8")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - scrapes are not worth a log line
        return


def serve(settings: Any, process: str, registry: CollectorRegistry = REGISTRY) -> tuple[str, int] | None:
    """The process's observability, at start: traces when ``settings.otlp_endpoint`` is set
    (:mod:`motcua.tracing`), and the metrics endpoint when ``settings.metrics_port`` is set (0: a
    free port); prints ``METRICS <process> http://host:port/metrics``. ``registry``: what the
    endpoint exposes (the process's own series; a pod's several processes: :func:`pod_registry`).
    Returns the metrics endpoint's address, or None."""
    _safely(lambda: tracing.configure(settings, process))
    if settings.metrics_port is None:
        return None
    handler = type("Handler", (_Handler,), {"lost_s": float(settings.consumer_lost_s), "registry": registry})
    server = ThreadingHTTPServer((settings.metrics_host, int(settings.metrics_port)), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    host, port = server.server_address[:2]
    print(f"METRICS {process} http://{host}:{port}/metrics", flush=True)
    log.info("metrics served", extra={"address": f"{host}:{port}"})
    return str(host), int(port)


def pod_registry(directory: str, pids: Callable[[], list[int]]) -> CollectorRegistry:
    """What one scrape of a pod of several processes shows: the series every process of ``pids``
    wrote into ``directory`` (prometheus_client's multiprocess mode: counters and histograms
    summed, gauges as their ``multiprocess_mode`` says), and the CPU, memory and open files of
    those processes together (a bench divides the pod's CPU, an operator sizes its limits)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    registry.register(_PodProcesses(pids))
    return registry


class _PodProcesses:
    """``process_*`` series of several processes, summed (their start time: the earliest; their
    file limit: the first's). prometheus_client's ProcessCollector reads one pid's /proc."""

    _FIRST = {"process_start_time_seconds": min, "process_max_fds": lambda values: values[0]}

    def __init__(self, pids: Callable[[], list[int]]):
        self._pids = pids

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, list[float]] = {}
        for pid in self._pids():
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                families.setdefault(family.name, family)
                values.setdefault(family.name, []).extend(sample.value for sample in family.samples)
        for name, family in families.items():
            combine = self._FIRST.get(family.samples[0].name if family.samples else name, sum)
            total = Metric(family.name, family.documentation, family.type)
            sample = family.samples[0]
            total.add_sample(sample.name, sample.labels, combine(values[name]))
            yield total


# -- dossiers at work, signing and delivery (operations) ------------------------------------------
#
#   motcua_dossiers [area, status]                      dossiers of an area at work now, by status (the
#                                                       routing worker's `dossier_gauges` timer, from the
#                                                       store's indexes)
#   motcua_dossiers_overdue [area, state]               of those, the open ones whose due date is behind
#                                                       today (Decision 766, by date): in_process, paused
#   motcua_signing_duration_seconds [operation, level, outcome]
#                                                       a result signed (operation sign: the official's
#                                                       signature then the seal) or a form sealed (seal),
#                                                       waiting for a free signing process included; level
#                                                       reached (B-T, B-LT, B-LTA; "none" when it failed);
#                                                       outcome ok, refused (no valid certificate),
#                                                       unavailable (TSA, CA), invalid, died (a child)
#   motcua_notify_delivery_duration_seconds [channel, outcome]
#                                                       one delivery attempt: email, sms (the applicant),
#                                                       webhook; accepted, refused (permanent: not tried
#                                                       again) or failed (tried again later)

DOSSIERS = Gauge("motcua_dossiers", "Dossiers of an area at work now, by status", ["area", "status"],
                 multiprocess_mode="livemax")
DOSSIERS_OVERDUE = Gauge("motcua_dossiers_overdue", "Open dossiers of an area whose due date is behind today",
                         ["area", "state"], multiprocess_mode="livemax")
# Signing waits on a TSA and OCSP over HTTP: seconds, not milliseconds.
SIGNING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
SIGNING_SECONDS = Histogram("motcua_signing_duration_seconds", "Time to sign a result or seal a form",
                            ["operation", "level", "outcome"], buckets=SIGNING_BUCKETS)
DELIVERY_SECONDS = Histogram("motcua_notify_delivery_duration_seconds", "Time of one delivery attempt",
                             ["channel", "outcome"], buckets=LATENCY_BUCKETS)


def dossiers_at_work(area: str, by_status: dict[str, int], overdue: dict[str, int]) -> None:
    """The gauges of one area, every label set each round (a status that emptied reads 0)."""

    def record() -> None:
        for status, n in by_status.items():
            DOSSIERS.labels(area, status).set(n)
        for state, n in overdue.items():
            DOSSIERS_OVERDUE.labels(area, state).set(n)

    _safely(record)


def signing_done(operation: str, level: str, outcome: str, seconds: float) -> None:
    _safely(lambda: SIGNING_SECONDS.labels(operation, level or "none", outcome).observe(seconds))


def delivery_attempted(channel: str, outcome: str, seconds: float) -> None:
    _safely(lambda: DELIVERY_SECONDS.labels(channel, outcome).observe(seconds))
