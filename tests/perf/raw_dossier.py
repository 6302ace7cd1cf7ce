"""The raw baseline of bench_platform.py (not a benchmark itself): per dossier, the work a dossier
costs the platform without the platform. The same render functions (intake's form 01, routing's
draft and form 05), the same signatures with the same token keys, TSA and OCSP (signing's
``apply_signatures``/``apply_seal`` through the key source the signing worker builds from the same
settings, at the same PAdES level), and as many S3 PUTs and GETs (a bare minio client), SQLite
writes and commits (sqlite3, WAL, ``synchronous=FULL``) and persistent publishes with confirms
(kombu, a durable queue) as the platform's counters said a dossier made. No gRPC, no nameko, no
outbox, no unit of work.

:func:`run` spreads N dossiers over worker processes (spawned), each doing one dossier at a time.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import sqlite3
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

RAW_QUEUE = "motcua.raw-baseline"


@dataclass(frozen=True)
class Work:
    """What one dossier costs, per dossier (fractions: spread over the dossiers, see :func:`share`)."""

    pdfs: dict[str, float]  # form -> rendered
    signatures: dict[str, float]  # official, seal, document_timestamp
    s3_puts: float
    s3_gets: float
    store_writes: float
    store_commits: float
    publishes: float
    validations: float = 0.0  # PDFs whose signatures are validated (archive's check before ingest)


@dataclass
class Outcome:
    dossiers: int
    seconds: float
    processes: int
    worker_cpu_s: float
    phases: list[dict[str, float]] = field(default_factory=list)  # per dossier: part -> seconds

    @property
    def latencies(self) -> list[float]:
        return [p["dossier"] for p in self.phases]

    @property
    def rate(self) -> float:
        return self.dossiers / self.seconds


def share(per_dossier: float, n: int) -> int:
    """Dossier ``n``'s whole share of a fractional count: over N dossiers they add up to N × it."""
    return round((n + 1) * per_dossier) - round(n * per_dossier)


# -- one worker process --------------------------------------------------------------------------

_state: dict = {}


def _init(env: dict[str, str], db_path: str, bucket: str) -> None:
    os.environ.update(env)
    from signing.adapters.signer_pool import build_key_source, engine_config
    from signing.config import SigningSettings

    settings = SigningSettings.load()
    for attempt in range(10):
        try:
            _state["keys"] = build_key_source(engine_config(settings))
            break
        except Exception:  # SoftHSM2 did not list the token while other processes opened it (seen once)
            if attempt == 9:
                raise
            time.sleep(1)
    _state["lta"] = settings.signing_lta
    _state["roots"] = [settings.trust_roots.read_bytes()] if settings.trust_roots else []
    _state["s3"] = s3_client(env)
    _state["bucket"] = bucket
    # a file of the process's own: the platform's processes meet at a file only within a service
    _state["db"] = sqlite_file(f"{db_path}.{os.getpid()}")
    _state["amqp"], _state["producer"], _state["queue"] = confirmed_publisher(env)


# -- the raw pieces (also the raw gRPC server's, raw_server.py) ------------------------------------


def s3_client(env: dict[str, str]):
    """A bare minio client of the platform's S3 (its MOTCUA_S3_* settings)."""
    from minio import Minio

    return Minio(env["MOTCUA_S3_ENDPOINT"], access_key=env["MOTCUA_S3_ACCESS_KEY"],
                 secret_key=env["MOTCUA_S3_SECRET_KEY"], secure=False, region="us-east-1")


def put_object(s3, bucket: str, prefix: str, data: bytes) -> str:
    """A content-addressed PUT with its SHA-256 in the metadata, as the platform's objects are."""
    digest = hashlib.sha256(data).hexdigest()
    key = f"{prefix}/{digest}"
    s3.put_object(bucket, key, io.BytesIO(data), len(data), content_type="application/pdf",
                  metadata={"sha256": digest})
    return key


def sqlite_file(path: str) -> sqlite3.Connection:
    """An SQLite database as the platform's store opens its file: WAL, synchronous=FULL (an fsync
    per commit), autocommit (BEGIN IMMEDIATE / COMMIT by hand); a table of JSON documents by id."""
    db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS raw (id TEXT PRIMARY KEY, doc TEXT)")
    return db


def confirmed_publisher(env: dict[str, str]):
    """(connection, producer, queue): kombu with publisher confirms, a durable queue declared."""
    from kombu import Connection, Exchange, Queue

    connection = Connection(env["MOTCUA_AMQP_URI"], transport_options={"confirm_publish": True})
    queue = Queue(RAW_QUEUE, Exchange("", type="direct"), routing_key=RAW_QUEUE, durable=True)
    queue(connection.default_channel).declare()
    return connection, connection.Producer(), queue


def publish_confirmed(producer, queue, body: bytes) -> None:
    """A persistent publish; returns once the broker confirmed it."""
    producer.publish(body, exchange="", routing_key=queue.name, delivery_mode=2, content_type="application/json",
                     content_encoding="binary", message_id=str(uuid.uuid4()))


def _dossier(n: int, work: Work) -> dict[str, float]:
    """The work of dossier ``n``; the seconds of each part of it, and in all."""
    from signing.adapters.pdf import apply_seal, apply_signatures
    from signing.domain import SealRequest, SignerRef, SigningRequest

    started = time.monotonic()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        phases[name] = time.monotonic() - started - sum(phases.values())

    code = f"000.00.12.H56-261207-{n % 10_000:04d}"
    rendered = {form: [render(form, code) for _ in range(share(count, n))] for form, count in work.pdfs.items()}
    drafts = rendered.get("draft") or [render("draft", code)]
    forms = [pdf for form, pdfs in rendered.items() if form != "draft" for pdf in pdfs] or drafts
    lap("render")
    results = []
    keys = _state["keys"]
    officials = share(work.signatures.get("official", 0), n)
    for i in range(officials):  # a result: the official's signature, then the seal
        draft = drafts[i % len(drafts)]
        request = SigningRequest(f"raw-{n}-{i}", code, "ba-thuoc",
                                 {"key": "k", "sha256": hashlib.sha256(draft).hexdigest(), "size": len(draft),
                                  "media_type": "application/pdf"},
                                 (SignerRef("personal", "sign-ba-thuoc"), SignerRef("seal", "ba-thuoc")))
        results.append(apply_signatures(draft, request, keys).data)
    for i in range(max(0, share(work.signatures.get("seal", 0), n) - officials)):  # sealed forms
        results.append(apply_seal(forms[i % len(forms)], SealRequest("ba-thuoc", f"Mẫu {code}"), keys).data)
    lap("sign")
    from signing.adapters.pdf import validate_pdf

    for i in range(share(work.validations, n) if results else 0):  # the signed PDFs, as archive checks them
        validate_pdf(results[i % len(results)], _state["roots"])
    lap("validate")
    blobs = [*results, *forms, *drafts]
    s3, bucket = _state["s3"], _state["bucket"]
    keys_put = []
    for i in range(share(work.s3_puts, n)):
        keys_put.append(put_object(s3, bucket, f"raw/{code}/{i}", blobs[i % len(blobs)]))
    for i in range(share(work.s3_gets, n)):
        response = s3.get_object(bucket, keys_put[i % len(keys_put)] if keys_put else "missing")
        try:
            hashlib.sha256(response.read()).hexdigest()
        finally:
            response.close()
            response.release_conn()
    lap("s3")
    _store(n, code, share(work.store_writes, n), share(work.store_commits, n))
    lap("store")
    producer, queue = _state["producer"], _state["queue"]
    for i in range(share(work.publishes, n)):
        publish_confirmed(producer, queue, json.dumps({"code": code, "n": i}).encode())
    lap("publish")
    phases["dossier"] = time.monotonic() - started
    return phases


def _store(n: int, code: str, writes: int, commits: int) -> None:
    """``writes`` inserts of a dossier-sized JSON document in ``commits`` transactions (FULL: an fsync each)."""
    db = _state["db"]
    commits = max(1, min(commits, writes)) if writes else 0
    doc = json.dumps({"code": code, "status": 4, "timeline": [{"at": datetime.now(UTC).isoformat(), "step": s}
                                                               for s in range(7)]})
    for t in range(commits):
        db.execute("BEGIN IMMEDIATE")
        for _ in range(share(writes / commits, t)):
            db.execute("INSERT INTO raw (id, doc) VALUES (?, ?)", (uuid.uuid4().hex, doc))
        db.execute("COMMIT")


def _work_loop(env, db_path, bucket, work, numbers, ready, go, results) -> None:
    try:
        _init(env, db_path, bucket)
        _dossier(-1, work)  # imports, fonts, sessions: as the platform's warm-up dossiers did
        ready.put(os.getpid())
        go.wait()
        cpu0 = time.process_time()
        latencies = [_dossier(n, work) for n in numbers]
        results.put((latencies, time.process_time() - cpu0))
    except BaseException:  # the parent stops the benchmark with it
        ready.put(None)
        results.put(traceback.format_exc())
        raise
    finally:
        if "amqp" in _state:
            _state["amqp"].release()


# -- the forms, with the platform's own render functions ----------------------------------------


def render(form: str, code: str) -> bytes:
    from routing.adapters.drafts import DRAFT_TITLE, render_control_slip, render_draft

    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    if form == "form-01":
        return _receipt(code, now)
    if form == "form-05":
        return render_control_slip(_slip(code, now), dated=now)
    return render_draft(code=code, procedure_code="1.004616", unit_id="ba-thuoc", title=DRAFT_TITLE, dated=now)


def _receipt(code: str, now: datetime) -> bytes:
    from intake.adapters.forms import render_receipt
    from intake.domain.forms import ReceiptData

    return render_receipt(ReceiptData(
        unit_name="Bộ phận Một cửa UBND huyện Bá Thước", code=code, applicant_name="Công dân Nguyễn Văn A",
        procedure_name="Cấp giấy phép xây dựng nhà ở riêng lẻ", procedure_code="1.004616",
        components=(("Đơn đề nghị cấp giấy phép xây dựng", 1, 0), ("Bản vẽ thiết kế", 2, 0)),
        duration="15 ngày làm việc", received_at=now, appointment_at=now + timedelta(days=21),
        lookup_url="https://motcua.example.vn/tra-cuu", official_name="Lê Thị Tiếp Nhận",
        agency_name="UBND TỈNH THANH HÓA", place="Thanh Hóa", applicant_id_number="038000000001",
        applicant_email="cong.dan@example.vn", result_delivery="Tại Bộ phận Một cửa"))


def _slip(code: str, now: datetime):
    from routing.domain.control_slip import ControlSlip, SlipRow

    units = ["ba-thuoc", "phong-kinh-te", "phong-kinh-te", "lanh-dao", "lanh-dao", "ba-thuoc", "ba-thuoc"]
    rows = tuple(SlipRow(step_index=i, step_name=f"Bước {i + 1}", from_unit=units[i - 1] if i else "ba-thuoc",
                         from_actor="cán bộ", to_unit=units[i], handed_at=now + timedelta(hours=i),
                         deadline=now + timedelta(hours=i + 8), done_at=now + timedelta(hours=i + 1),
                         verdict="early") for i in range(len(units)))
    return ControlSlip(code=code, procedure_code="1.004616", receiving_unit="ba-thuoc", received_at=now,
                       due_at=now + timedelta(days=21), status=10, rows=rows)


# -- the run --------------------------------------------------------------------------------------


def run(env: dict[str, str], workdir: Path, bucket: str, work: Work, dossiers: int, processes: int,
        watch=None) -> Outcome:
    """``dossiers`` raw dossiers over ``processes`` spawned workers (dossier n to worker n mod p),
    timed from the moment every worker is ready. ``watch()`` is called at the start and the end
    (the caller reads CPU figures then)."""
    db_path = workdir / "raw.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_work_loop, args=(env, str(db_path), bucket, work,
                                                  list(range(p, dossiers, processes)), ready, go, results),
                         daemon=True) for p in range(processes)]
    for proc in procs:
        proc.start()
    try:
        if None in [ready.get(timeout=300) for _ in procs]:
            raise RuntimeError(f"a raw worker failed:\n{results.get(timeout=10)}")
        if watch:
            watch()
        start = time.monotonic()
        go.set()
        outcome = Outcome(dossiers, 0.0, processes, 0.0)
        for _ in procs:
            answer = results.get(timeout=3600)
            if isinstance(answer, str):
                raise RuntimeError(f"a raw worker failed:\n{answer}")
            latencies, cpu = answer
            outcome.phases += latencies
            outcome.worker_cpu_s += cpu
        outcome.seconds = time.monotonic() - start
        if watch:
            watch()
        for proc in procs:
            proc.join(30)
        return outcome
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
