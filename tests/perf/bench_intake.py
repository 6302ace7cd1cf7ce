"""Benchmark (not a test): intake's api process alone, beside a bare grpcio echo server measured in
the same run. Prints figures and ratios; asserts nothing about time.

    .venv/bin/python tests/perf/bench_intake.py [--clients 8,32] [--seconds 5] [--processes 4]
                                                [--upload-mib 50] [--chunk-kib 1024]

Starts only what it measures: the intake api process as the platform starts it (``api_spec``),
on a fresh SQLite store in a temporary directory, a private RabbitMQ vhost and a fresh bucket of
SeaweedFS (a private one unless a ``make run`` S3 answers); the running RabbitMQ must answer.

(b) UploadDocument: one PDF of ``--upload-mib`` MiB streamed as a header then ``--chunk-kib``
    chunks; MiB/s, and the api process's peak memory (VmHWM, reset to the current RSS just before
    the upload) against its RSS before the upload.
(a) SubmitDossier with one ~100 KiB PDF at each concurrency of ``--clients``: stock grpcio clients
    (generated stubs), one channel per client, spread over ``--processes`` spawned client processes
    so the client side is not the bottleneck; calls/s, p50 and p99 over a ``--seconds`` window,
    beside the echo server receiving the same serialized request at the same concurrency, and the
    ratio of the calls/s. The CPU each process used in the window tells where the machine's cores
    went (intake api, SeaweedFS, RabbitMQ, the clients).
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
from motcua_dev.platform import api_spec
from motcua_dev.testing import drop_bucket, ensure_amqp_uri, seaweedfs_for_tests
from perfkit import (
    PeakSampler,
    echo_server,
    find_pid,
    measure_clients,
    pdf_document,
    proc_status,
    reset_peak_rss,
)

from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.settings import PlatformSettings

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


def cores_line(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="8,32", help="comma-separated concurrencies")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per figure")
    parser.add_argument("--warmup", type=float, default=1.0, help="load before each window")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--document-kib", type=int, default=100)
    parser.add_argument("--upload-mib", type=int, default=50)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.clients.split(",")]
    started = time.perf_counter()
    amqp = ensure_amqp_uri()
    workers = PlatformSettings.load().grpc_workers  # the api's thread pool; the echo server gets the same

    with (tempfile.TemporaryDirectory(prefix="motcua-bench-intake-") as tmp, seaweedfs_for_tests() as s3,
          private_vhost(amqp, prefix="motcua-bench") as vhost):
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        port = infra.free_port()
        env = {"MOTCUA_AMQP_URI": vhost, "MOTCUA_DATA_DIR": str(Path(tmp) / "data"), **s3.env(bucket),
               # the default limit per document is 20 MiB; the upload figure is for a larger scan
               "MOTCUA_MAX_DOCUMENT_BYTES": str(max(args.upload_mib * MIB + MIB, 20 * MIB))}
        stack = Stack([api_spec("intake", env, port)], Path(tmp) / "logs")
        try:
            with stack:
                stack.wait_ready(120)
                address, api_pid = f"127.0.0.1:{port}", stack.pid("intake-api")
                request = submit_request(args.document_kib * 1024)
                payload = request.SerializeToString()
                with grpc.insecure_channel(address) as channel:  # warm: first submission, first upload
                    intake_pb2_grpc.IntakeServiceStub(channel).SubmitDossier(request, timeout=60)
                upload(address, pdf_document(2 * MIB, seed=3), args.chunk_kib * 1024)

                # (b) the large upload, on a process that has served one submission and one upload
                data = pdf_document(args.upload_mib * MIB, seed=2, title="Ban ve thiet ke")
                reset = reset_peak_rss(api_pid)
                rss_before = proc_status(api_pid)["VmRSS"]
                with PeakSampler(api_pid) as sampler:
                    response, upload_s = upload(address, data, args.chunk_kib * 1024)
                status = proc_status(api_pid)
                peak, rss_after = status["VmHWM"], status["VmRSS"]
                if response.size != len(data) or response.sha256 != hashlib.sha256(data).hexdigest():
                    print(f"upload answered {response}", file=sys.stderr)
                    return 1
                del data

                # (a) SubmitDossier and the echo baseline at each concurrency, taking turns
                watch = {"intake-api": api_pid, "weed": s3.server.pid() if s3.server else None,
                         "rabbitmq": find_pid("beam.smp")}
                rows = []
                with echo_server(Path(tmp) / "echo", workers) as (echo_address, echo_pid):
                    for clients in concurrencies:
                        submit = measure_clients(address, "submit", payload, clients, args.processes,
                                                 args.seconds, args.warmup, watch)
                        echo = measure_clients(echo_address, "echo", payload, clients, args.processes,
                                               args.seconds, args.warmup, {"echo-server": echo_pid})
                        for result, what in ((submit, "SubmitDossier"), (echo, "echo")):
                            if result.errors or not result.latencies:
                                print(f"{what} at {clients} clients failed: {result.errors[:3]}\n"
                                      f"{stack.tail('intake-api')}", file=sys.stderr)
                                return 1
                        rows.append((clients, submit, echo))
        finally:
            if s3.server is None:  # a shared S3 (make run): leave no benchmark objects behind
                drop_bucket(s3.store(bucket))

    print(f"intake api alone (grpcio {grpc.__version__}, {workers} server threads, {os.cpu_count()} CPUs; "
          f"SQLite store, SeaweedFS S3, RabbitMQ with publisher confirms)")
    print(f"\n(b) UploadDocument: {args.upload_mib} MiB PDF in {args.chunk_kib} KiB chunks: {upload_s:.2f} s "
          f"-> {args.upload_mib / upload_s:.1f} MiB/s")
    print(f"    intake api memory: RSS before {rss_before / MIB:.1f} MiB, peak (VmHWM) {peak / MIB:.1f} MiB "
          f"-> +{(peak - rss_before) / MIB:.1f} MiB = {(peak - rss_before) / (args.upload_mib * MIB):.2f} x the "
          f"file size" + ("" if reset else " (VmHWM could not be reset: peak since the process started)"))
    print(f"    (RSS sampled every 5 ms during the upload peaked at {sampler.peak / MIB:.1f} MiB; "
          f"RSS after the upload {rss_after / MIB:.1f} MiB)")
    print(f"\n(a) SubmitDossier, one {args.document_kib} KiB PDF ({len(payload):,} B request), vs a bare grpcio "
          f"echo server receiving the same bytes; {args.processes} client processes, one channel per client, "
          f"{args.seconds:g} s window after {args.warmup:g} s of load")
    print(f"    {'clients':>7} | {'submit/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'echo/s':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} | {'submit/echo':>11}")
    for clients, submit, echo in rows:
        print(f"    {clients:>7} | {submit.rate:>9.0f} {submit.p50_ms:>7.1f} {submit.p99_ms:>7.1f} | "
              f"{echo.rate:>8.0f} {echo.p50_ms:>7.1f} {echo.p99_ms:>7.1f} | {submit.rate / echo.rate:>11.3f}")
    print("    CPU used in the window, in cores:")
    for clients, submit, echo in rows:
        print(f"    {clients:>7}   submit: {cores_line(submit.cores())}")
        print(f"    {'':>7}   echo:   {cores_line(echo.cores())}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
