"""Benchmark (not a test): the platform end to end and the intake API, beside a bare grpcio echo
server measured in the same run. Prints figures and ratios; asserts nothing about time.

    .venv/bin/python tests/perf/bench_platform.py [--dossiers 200] [--clients 32] [--calls 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
from motcua_dev.harness import archived, running_platform, sample_request, submit_all
from motcua_dev.testing import ensure_amqp_uri, seaweedfs_for_tests
from perfkit import echo_server, load, percentile

from motcua.intake.v1 import intake_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--calls", type=int, default=20, help="calls per client")
    args = parser.parse_args()
    amqp = ensure_amqp_uri()
    with tempfile.TemporaryDirectory(prefix="motcua-bench-") as tmp, seaweedfs_for_tests() as s3:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        with running_platform(Path(tmp), amqp, s3.env(bucket)) as platform:
            # 1. end to end: submission to archive
            requests = [sample_request(("bim-son", "ba-thuoc")[n % 2], n, documents=1)
                        for n in range(args.dossiers)]
            start = time.perf_counter()
            codes = {a.code for a in submit_all(platform.intake_address, requests, threads=16)}
            submitted = time.perf_counter() - start
            if not platform.events.wait_until(archived(codes), timeout=1800):
                print(platform.progress(codes), file=sys.stderr)
                return 1
            e2e = time.perf_counter() - start
            print(f"e2e (officials played through RoutingService by OfficialsAtWork): {args.dossiers} dossiers "
                  f"submitted in {submitted:.1f}s, all archived after "
                  f"{e2e:.1f}s -> {args.dossiers / e2e:.1f} dossiers/s")
            # let the pipeline drain so the API measurement does not share the machine with it
            time.sleep(2)

            # 2. SubmitDossier at N clients vs a bare echo server with the same payload
            batches = [[sample_request("bim-son", 10_000 + c * args.calls + i, documents=1)
                        for i in range(args.calls)] for c in range(args.clients)]
            payload = batches[0][0].SerializeToString()
            channels = [grpc.insecure_channel(platform.intake_address) for _ in range(args.clients)]
            stubs = iter([intake_pb2_grpc.IntakeServiceStub(ch) for ch in channels])
            local = threading.local()

            def submit(request):
                if not hasattr(local, "stub"):
                    local.stub = next(stubs)
                local.stub.SubmitDossier(request, timeout=120)

            api_rate, api_lat = load(submit, batches, args.clients)
            for channel in channels:
                channel.close()

        with echo_server(Path(tmp) / "echo") as (echo_address, _):
            channels = [grpc.insecure_channel(echo_address) for _ in range(args.clients)]
            calls = iter([ch.unary_unary("/bench.Echo/Echo") for ch in channels])
            local_echo = threading.local()

            def echo_call(data: bytes):
                if not hasattr(local_echo, "call"):
                    local_echo.call = next(calls)
                local_echo.call(data, timeout=60)

            echo_rate, echo_lat = load(echo_call, [[payload] * args.calls for _ in range(args.clients)],
                                       args.clients)
            for channel in channels:
                channel.close()

    print(f"SubmitDossier ({len(payload)} B request) at {args.clients} clients: {api_rate:.0f} calls/s, "
          f"p50 {percentile(api_lat, 50) * 1000:.1f} ms, p99 {percentile(api_lat, 99) * 1000:.1f} ms")
    print(f"bare grpcio echo, same payload, {args.clients} clients: {echo_rate:.0f} calls/s, "
          f"p50 {percentile(echo_lat, 50) * 1000:.1f} ms, p99 {percentile(echo_lat, 99) * 1000:.1f} ms")
    print(f"ratio SubmitDossier / echo: {api_rate / echo_rate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
