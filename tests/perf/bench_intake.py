"""Benchmark (not a test): intake's api process alone, beside a bare grpcio echo server measured in
the same run. Prints figures and ratios; asserts nothing about time.

    .venv/bin/python tests/perf/bench_intake.py [--clients 8,32] [--seconds 5] [--processes 4]
                                                [--api-processes 1,CPUS] [--upload-mib 50] [--chunk-kib 1024]

Starts only what it measures: the intake api process as the platform starts it (``api_spec``),
on a fresh SQLite store in a temporary directory, a private RabbitMQ vhost and a fresh bucket of
SeaweedFS (a private one unless a ``make run`` S3 answers); the running RabbitMQ must answer.

(b) UploadDocument (with one api server process): one PDF of ``--upload-mib`` MiB streamed as a
    header then ``--chunk-kib`` chunks; MiB/s, and the api process's peak memory (VmHWM, reset to
    the current RSS just before the upload) against its RSS before the upload.
(a) SubmitDossier with one ~100 KiB PDF at each concurrency of ``--clients``, for each count of
    api server processes in ``--api-processes`` (MOTCUA_API_PROCESSES; default 1 and the usable
    CPUs): stock grpcio clients (generated stubs), one channel per client, spread over
    ``--processes`` spawned client processes so the client side is not the bottleneck; calls/s,
    p50 and p99 over a ``--seconds`` window, beside
    - the RAW baseline (``raw_server.py``, as many processes as the api's on one port): a bare
      grpcio server doing per call one S3 PUT of the request's bytes, one fsynced SQLite insert
      (WAL, synchronous=FULL, one file) and one publish waited for its confirm (kombu) — the goals
      (issue 14): SubmitDossier/raw calls/s >= 0.5, p99 <= 3 x raw p99;
    - the bare grpcio echo server receiving the same serialized request (the second figure).
    What one SubmitDossier made the api do (publishes, confirms, store writes, commits, S3 PUTs,
    from its /metrics) and the CPU each process used in the window tell where the time went.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from motcua_dev import infra
from motcua_dev.devstack import Stack
from motcua_dev.harness import private_vhost, sample_request
from motcua_dev.platform import api_spec, metrics_urls, scrape
from motcua_dev.testing import drop_bucket, ensure_amqp_uri, seaweedfs_for_tests
from perfkit import (
    API_GOALS,
    LoadResult,
    PeakSampler,
    call_costs,
    echo_server,
    find_pid,
    measure_clients,
    pdf_document,
    print_vs_baselines,
    proc_status,
    raw_server,
    reset_peak_rss,
)

from motcua.api_processes import usable_cpus
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.settings import PlatformSettings

SUBMIT_METHOD = "/motcua.intake.v1.IntakeService/SubmitDossier"

MIB = 1024 * 1024


def submit_request(document_bytes: int) -> intake_pb2.SubmitDossierRequest:
    """The harness's sample submission (procedure 1.004616, component don-de-nghi) with one PDF of
    ``document_bytes``."""
    request = sample_request("bim-son", 1, documents=1)
    request.documents[0].content = pdf_document(document_bytes, seed=1, title="Don de nghi cap phep xay dung")
    return request


def upload(address: str, data: bytes, chunk: int) -> tuple[intake_pb2.UploadDocumentResponse, float]:
    def messages():
        yield intake_pb2.UploadDocumentRequest(header=intake_pb2.UploadHeader(
            request_id=f"bench-upload-{uuid.uuid4().hex}", media_type="application/pdf",
            sha256=hashlib.sha256(data).hexdigest()))
        view = memoryview(data)
        for offset in range(0, len(data), chunk):
            yield intake_pb2.UploadDocumentRequest(chunk=bytes(view[offset:offset + chunk]))

    with grpc.insecure_channel(address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        started = time.perf_counter()
        response = stub.UploadDocument(messages(), timeout=600)
        return response, time.perf_counter() - started


class BenchFailed(Exception):
    pass


def checked(result: LoadResult, what: str, clients: int, stack: Stack | None = None) -> LoadResult:
    if result.errors or not result.latencies:
        tail = f"\n{stack.tail('intake-api')}" if stack else ""
        raise BenchFailed(f"{what} at {clients} clients failed: {result.errors[:3]}{tail}")
    return result


def bench_upload(args: argparse.Namespace, address: str, api_pid: int) -> dict[str, float]:
    """(b), on an api of one server process that has served one submission and one upload."""
    upload(address, pdf_document(2 * MIB, seed=3), args.chunk_kib * 1024)
    data = pdf_document(args.upload_mib * MIB, seed=2, title="Ban ve thiet ke")
    reset = reset_peak_rss(api_pid)
    rss_before = proc_status(api_pid)["VmRSS"]
    with PeakSampler(api_pid) as sampler:
        response, upload_s = upload(address, data, args.chunk_kib * 1024)
    status = proc_status(api_pid)
    if response.size != len(data) or response.sha256 != hashlib.sha256(data).hexdigest():
        raise BenchFailed(f"upload answered {response}")
    return {"seconds": upload_s, "rss_before": rss_before, "peak": status["VmHWM"], "rss_after": status["VmRSS"],
            "sampled": sampler.peak, "reset": reset}


def bench_submit(args: argparse.Namespace, workdir: Path, env: dict[str, str], api_processes: int,
                 payload: bytes, watch: dict[str, int | None]) -> tuple[list, dict | None]:
    """(a) for one count of api server processes: SubmitDossier and the raw server (as many
    processes) at each concurrency, taking turns; also (b) when the api has one process."""
    port = infra.free_port()
    api_env = {**env, "MOTCUA_API_PROCESSES": str(api_processes)}
    stack = Stack([api_spec("intake", api_env, port)], workdir / f"logs-{api_processes}")
    rows, uploaded = [], None
    with stack:
        stack.wait_ready(180)
        address, api_pid = f"127.0.0.1:{port}", stack.pid("intake-api")
        with grpc.insecure_channel(address) as channel:  # warm: the first submission
            intake_pb2_grpc.IntakeServiceStub(channel).SubmitDossier(intake_pb2.SubmitDossierRequest.FromString(payload),
                                                                     timeout=60)
        if api_processes == 1:
            uploaded = bench_upload(args, address, api_pid)
        metrics = metrics_urls(stack)["intake-api"]
        raw_db = workdir / f"raw-{api_processes}.sqlite3"
        with raw_server(workdir / f"raw-{api_processes}", env, api_processes, raw_db, s3_puts=1, publishes=1) \
                as (raw_address, raw_pids):
            for clients in args.clients:
                before = scrape(metrics)
                submit = checked(measure_clients(address, "submit", payload, clients, args.processes, args.seconds,
                                                 args.warmup, {**watch, "intake-api": api_pid}),
                                 "SubmitDossier", clients, stack)
                costs = call_costs(before, scrape(metrics), SUBMIT_METHOD)
                raw = checked(measure_clients(raw_address, "raw", payload, clients, args.processes, args.seconds,
                                              args.warmup, {**watch, **{f"raw-{n}": pid for n, pid in
                                                                        enumerate(raw_pids)}}), "raw", clients)
                rows.append((api_processes, clients, submit, raw, costs))
    return rows, uploaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="8,32", help="comma-separated concurrencies")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per figure")
    parser.add_argument("--warmup", type=float, default=1.0, help="load before each window")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--api-processes", default=f"1,{usable_cpus()}",
                        help="comma-separated MOTCUA_API_PROCESSES to measure (default: 1 and the usable CPUs)")
    parser.add_argument("--document-kib", type=int, default=100)
    parser.add_argument("--upload-mib", type=int, default=50)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    api_processes = list(dict.fromkeys(int(p) for p in args.api_processes.split(",")))
    started = time.perf_counter()
    amqp = ensure_amqp_uri()
    workers = PlatformSettings.load().grpc_workers  # the api's thread pool; the echo and raw servers get the same

    with (tempfile.TemporaryDirectory(prefix="motcua-bench-intake-") as tmp, seaweedfs_for_tests() as s3,
          private_vhost(amqp, prefix="motcua-bench") as vhost):
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        env = {"MOTCUA_AMQP_URI": vhost, "MOTCUA_DATA_DIR": str(Path(tmp) / "data"), **s3.env(bucket),
               # the default limit per document is 20 MiB; the upload figure is for a larger scan
               "MOTCUA_MAX_DOCUMENT_BYTES": str(max(args.upload_mib * MIB + MIB, 20 * MIB))}
        payload = submit_request(args.document_kib * 1024).SerializeToString()
        watch = {"weed": s3.server.pid() if s3.server else None, "rabbitmq": find_pid("beam.smp")}
        rows, uploaded, echoes = [], None, {}
        try:
            for count in api_processes:
                more, upload_figures = bench_submit(args, Path(tmp), env, count, payload, watch)
                rows += more
                uploaded = uploaded or upload_figures
            with echo_server(Path(tmp) / "echo", workers) as (echo_address, echo_pid):
                for clients in args.clients:
                    echoes[clients] = checked(measure_clients(echo_address, "echo", payload, clients, args.processes,
                                                              args.seconds, args.warmup, {"echo-server": echo_pid}),
                                              "echo", clients)
        except BenchFailed as failed:
            print(failed, file=sys.stderr)
            return 1
        finally:
            if s3.server is None:  # a shared S3 (make run): leave no benchmark objects behind
                drop_bucket(s3.store(bucket))

    print(f"intake api alone (grpcio {grpc.__version__}, {workers} server threads, {os.cpu_count()} CPUs, "
          f"{usable_cpus()} usable; SQLite store, SeaweedFS S3, RabbitMQ with publisher confirms)")
    if uploaded:
        print_upload(args, uploaded)
    print_submit(args, len(payload), rows, echoes)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


def print_upload(args: argparse.Namespace, u: dict[str, float]) -> None:
    print(f"\n(b) UploadDocument: {args.upload_mib} MiB PDF in {args.chunk_kib} KiB chunks: {u['seconds']:.2f} s "
          f"-> {args.upload_mib / u['seconds']:.1f} MiB/s")
    grown = u["peak"] - u["rss_before"]
    print(f"    intake api memory: RSS before {u['rss_before'] / MIB:.1f} MiB, peak (VmHWM) {u['peak'] / MIB:.1f} MiB "
          f"-> +{grown / MIB:.1f} MiB = {grown / (args.upload_mib * MIB):.2f} x the file size"
          + ("" if u["reset"] else " (VmHWM could not be reset: peak since the process started)"))
    print(f"    (RSS sampled every 5 ms during the upload peaked at {u['sampled'] / MIB:.1f} MiB; "
          f"RSS after the upload {u['rss_after'] / MIB:.1f} MiB)")


def print_submit(args: argparse.Namespace, size: int, rows: list, echoes: dict[int, LoadResult]) -> None:
    print(f"\n(a) SubmitDossier, one {args.document_kib} KiB PDF ({size:,} B request), vs the raw baseline (per call "
          f"1 S3 PUT + 1 fsynced SQLite insert + 1 confirmed publish, as many server processes) and vs a bare "
          f"grpcio echo server receiving the same bytes; {args.processes} client processes, one channel per "
          f"client, {args.seconds:g} s window after {args.warmup:g} s of load. Goals: submit/raw >= "
          f"{API_GOALS['raw']}, p99 <= {API_GOALS['p99']:g} x raw p99")
    print_vs_baselines("submit", rows, echoes, "1 / 1 / 1 / 1 / 1")


if __name__ == "__main__":
    sys.exit(main())
