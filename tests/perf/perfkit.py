"""Helpers shared by the benchmarks in this directory (not a benchmark itself: ``make bench`` runs
``bench_*.py``).

* :func:`load`: N client threads in this process, each making its calls one after the other.
* :func:`measure_clients`: N stock grpcio clients spread over separate client *processes* (spawned,
  so no grpc state crosses a fork), each thread making calls back to back for a fixed window; on
  a 2-core machine one Python process cannot drive a fast server (the GIL), several can.
* :func:`echo_server`: the bare grpcio echo server (``echo_server.py``) as a process, the raw
  baseline of the gRPC figures.
* :func:`pdf_document`: a valid PDF of an exact size (``%PDF-`` … ``%%EOF``, correct xref).
* :func:`proc_status`, :func:`cpu_seconds`, :func:`tree_cpu_seconds`, :func:`reset_peak_rss`: a
  process's memory and CPU (with its children's) as Linux's /proc tells them.

Importing it makes SIGTERM end a benchmark as Ctrl-C does (SystemExit), so the platforms it
started stop with it (their ``Stack``'s exit): killed by ``timeout``, a benchmark had left a whole
platform running.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from motcua_dev.devstack import ProcessSpec, Stack

HERE = Path(__file__).resolve().parent
ECHO_METHOD = "/bench.Echo/Echo"
RAW_METHOD = "/bench.Raw/Call"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _exit_on_sigterm() -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


_exit_on_sigterm()


# -- statistics ---------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


# -- clients as threads of this process ---------------------------------------------------------


def load(call, requests_per_client: list[list], clients: int) -> tuple[float, list[float]]:
    """Run ``clients`` threads, each making its calls one after the other; calls/s and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(requests: list) -> None:
        mine = []
        barrier.wait()
        for request in requests:
            start = time.perf_counter()
            call(request)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(r,)) for r in requests_per_client]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - start), latencies


# -- clients as separate processes --------------------------------------------------------------


@dataclass
class LoadResult:
    """Calls completed inside the measured window, their latencies, and who spent the CPU."""

    clients: int
    processes: int
    window_s: float
    latencies: list[float]
    errors: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0  # CPU of all client processes during the window
    watched_cpu_s: dict[str, float] = field(default_factory=dict)  # name -> CPU of a server process

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.window_s

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    @property
    def client_cores(self) -> float:
        return self.client_cpu_s / self.window_s

    def cores(self) -> dict[str, float]:
        """CPU used during the window, in cores, by each watched process and by the clients."""
        return {**{name: cpu / self.window_s for name, cpu in self.watched_cpu_s.items()},
                "clients": self.client_cores}


def _make_call(target: str, kind: str, payload: bytes) -> tuple[Callable[[], None], Callable[[], None]]:
    """(call, close) for one client thread: its own channel, as an agency's client would have."""
    import grpc

    # A connection of its own (grpcio shares one among a process's channels to the same target
    # otherwise): the kernel spreads connections, not calls, over an api's server processes.
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                                     ("grpc.use_local_subchannel_pool", 1)])
    if kind in ("echo", "raw"):
        echo = channel.unary_unary(ECHO_METHOD if kind == "echo" else RAW_METHOD)

        def call() -> None:
            echo(payload, timeout=120)
    elif kind == "submit":
        from motcua.intake.v1 import intake_pb2, intake_pb2_grpc

        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        request = intake_pb2.SubmitDossierRequest.FromString(payload)
        prefix = uuid.uuid4().hex
        counter = iter(range(1 << 62))

        def call() -> None:
            request.request_id = f"bench-{prefix}-{next(counter)}"  # a new submission each time
            stub.SubmitDossier(request, timeout=120)
    elif kind == "act":
        call = _act_call(channel, payload)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return call, channel.close


def _act_call(channel, payload: bytes) -> Callable[[], None]:
    """RoutingService.Act for one official working through dossiers of their own, given as JSON
    ``{"official": {official_id, unit, roles}, "dossiers": [[code, version], ...]}``: each
    dossier's first step is claimed, then completed (two calls), every call naming as
    ``expected_version`` the version the previous answer gave (the seeded one for the claim), so
    each call is a real state transition. Running out of dossiers is an error of the caller's
    sizing, never a silent idle client."""
    from motcua.routing.v1 import routing_pb2, routing_pb2_grpc

    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    work = json.loads(payload)
    official = routing_pb2.Official(**work["official"])
    dossiers = iter(work["dossiers"])
    claimed: list[tuple[str, int]] = []  # the dossier the previous call claimed: completed next
    acted = 0

    def call() -> None:
        nonlocal acted
        if claimed:
            (code, version), action = claimed.pop(), "complete"
        else:
            code, version = next(dossiers, (None, 0))
            if code is None:
                raise RuntimeError(f"act client ran out of dossiers after {acted} calls: seed more")
            action = "claim"
        response = stub.Act(routing_pb2.ActRequest(request_id=f"bench-{uuid.uuid4().hex}", code=code,
                                                   official=official, action=action, expected_version=version),
                            timeout=120)
        if action == "claim":
            claimed.append((code, response.timeline.version))
        acted += 1

    return call


def _client_process(target: str, kind: str, payloads: list[bytes], ready, go, window, results) -> None:
    """One client process: a client per payload, each calling back to back until the window ends.
    ``window`` holds (start, end) on CLOCK_MONOTONIC, which every process of the machine shares."""
    threads = len(payloads)
    calls = [_make_call(target, kind, payload) for payload in payloads]
    errors: list[str] = []
    try:
        for call, _ in calls:  # connect and warm each channel before the clock starts
            call()
    except Exception as exc:  # reported by the parent, which stops the benchmark
        errors.append(f"warm-up: {exc!r}")
    ready.put(os.getpid())
    go.wait()
    start, end = window[0], window[1]
    samples: list[list[float]] = [[] for _ in range(threads)]

    def client(index: int) -> None:
        call = calls[index][0]
        mine = samples[index]
        while True:
            begun = time.monotonic()
            if begun >= end:
                return
            try:
                call()
            except Exception as exc:
                errors.append(repr(exc)[:300])
                return
            finished = time.monotonic()
            if start <= begun and finished <= end:  # completed wholly inside the window
                mine.append(finished - begun)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)] if not errors else []
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start - time.monotonic()))
    cpu0 = time.process_time()
    time.sleep(max(0.0, end - time.monotonic()))
    cpu = time.process_time() - cpu0
    for worker in workers:
        worker.join()
    for _, close in calls:
        close()
    results.put(([s for mine in samples for s in mine], errors, cpu))


def measure_clients(target: str, kind: str, payload: bytes | Sequence[bytes], clients: int, processes: int = 4,
                    seconds: float = 5.0, warmup: float = 1.0, watch: dict[str, int] | None = None) -> LoadResult:
    """``clients`` concurrent stock grpcio clients over ``processes`` spawned processes, calling
    ``kind`` ("echo": the echo server's method with ``payload`` as raw bytes; "submit":
    IntakeService.SubmitDossier with the serialized request ``payload`` under a new request id
    each call; "act": RoutingService.Act, see :func:`_act_call`) back to back; calls completed
    within ``seconds`` after ``warmup`` are counted. ``payload``: the same bytes for every client,
    or one payload per client (``clients`` of them: "act" clients each need dossiers of their own).
    ``watch``: name -> pid of processes whose CPU during the window (with their children's: an
    api's server processes) is reported too. "raw": the raw server's method (``raw_server``)."""
    payloads = [payload] * clients if isinstance(payload, bytes) else list(payload)
    if len(payloads) != clients:
        raise ValueError(f"{len(payloads)} payloads for {clients} clients")
    processes = max(1, min(processes, clients))
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    starts = [sum(per[:i]) for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    window = ctx.Array("d", 2, lock=False)
    procs = [ctx.Process(target=_client_process,
                         args=(target, kind, payloads[start:start + n], ready, go, window, results), daemon=True)
             for start, n in zip(starts, per, strict=True)]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        begin = time.monotonic() + 0.2 + warmup
        window[0], window[1] = begin, begin + seconds
        go.set()
        outcome = LoadResult(clients, processes, seconds, [])
        watch = {name: pid for name, pid in (watch or {}).items() if pid}
        time.sleep(max(0.0, begin - time.monotonic()))
        before = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
        time.sleep(max(0.0, begin + seconds - time.monotonic()))
        outcome.watched_cpu_s = {name: tree_cpu_seconds(pid) - before[name] for name, pid in watch.items()}
        for _ in procs:
            latencies, errors, cpu = results.get(timeout=seconds + warmup + 180)
            outcome.latencies += latencies
            outcome.errors += errors
            outcome.client_cpu_s += cpu
        for proc in procs:
            proc.join(30)
        return outcome
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# -- an api call vs its raw baseline and echo ----------------------------------------------------

API_GOALS = {"raw": 0.5, "p99": 3.0}  # issue 14: calls/s >= 0.5 of raw's, p99 <= 3 x raw's


def cores_line(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def print_vs_baselines(call: str, rows: list, echoes: dict, raw_costs: str) -> None:
    """The table of an api call (``call``: "submit", "act") at each (api processes, clients) of
    ``rows`` — (procs, clients, ours, raw, costs) — beside the raw baseline and echo: calls/s,
    p50, p99 and the ratios; then what each call made the api do, and each process's cores."""
    width = max(len(call) + 2, 6)
    print(f"    {'procs':>5} {'clients':>7} | {call + '/s':>{width}} {'p50 ms':>7} {'p99 ms':>7} | {'raw/s':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7} | {'echo/s':>6} | {call + '/raw':>{width + 2}} {'p99/raw p99':>11} | "
          f"{call + '/echo':>{width + 3}}")
    for procs, clients, ours, raw, _ in rows:
        echo = echoes[clients]
        print(f"    {procs:>5} {clients:>7} | {ours.rate:>{width}.0f} {ours.p50_ms:>7.1f} {ours.p99_ms:>7.1f} | "
              f"{raw.rate:>6.0f} {raw.p50_ms:>7.1f} {raw.p99_ms:>7.1f} | {echo.rate:>6.0f} | "
              f"{ours.rate / raw.rate:>{width + 2}.2f} {ours.p99_ms / raw.p99_ms:>11.2f} | "
              f"{ours.rate / echo.rate:>{width + 3}.3f}")
    print(f"    per {call}, what the api did (its /metrics; raw: {raw_costs}):")
    for procs, clients, _, _, costs in rows:
        print(f"    {procs:>5} {clients:>7}   " + ", ".join(f"{name} {value:.2f}" for name, value in costs.items()))
    print("    CPU used in the window, in cores (a process with its children):")
    label = max(len(call), 4) + 1
    for procs, clients, ours, raw, _ in rows:
        print(f"    {procs:>5} {clients:>7}   {call + ':':<{label}} {cores_line(ours.cores())}")
        print(f"    {'':>5} {'':>7}   {'raw:':<{label}} {cores_line(raw.cores())}")
    for clients, echo in echoes.items():
        print(f"    {'':>5} {clients:>7}   {'echo:':<{label}} {cores_line(echo.cores())}")


# -- the echo baseline --------------------------------------------------------------------------


@contextlib.contextmanager
def echo_server(log_dir: Path, workers: int = 16) -> Iterator[tuple[str, int]]:
    """The bare grpcio echo server as a process: yields (address, pid)."""
    spec = ProcessSpec("echo", [sys.executable, str(HERE / "echo_server.py"), str(workers)],
                       ready_pattern="^READY")
    with Stack([spec], log_dir) as stack:
        stack.wait_ready(30)
        port = stack.tail("echo", 5).split()[-1]
        yield f"127.0.0.1:{port}", stack.pid("echo")


@contextlib.contextmanager
def raw_server(log_dir: Path, env: dict[str, str], processes: int, db_path: Path, s3_puts: int, publishes: int,
               workers: int = 16) -> Iterator[tuple[str, list[int]]]:
    """``processes`` raw servers (``raw_server.py``) on one free port (SO_REUSEPORT), doing per call
    ``s3_puts`` S3 PUTs, an fsynced SQLite insert on ``db_path`` and ``publishes`` confirmed
    publishes with the S3 and RabbitMQ of ``env``: yields (address, pids)."""
    from motcua_dev import infra

    port = infra.free_port()
    specs = [ProcessSpec(f"raw-{n}", [sys.executable, str(HERE / "raw_server.py"), str(port), str(workers),
                                      str(db_path), str(s3_puts), str(publishes)],
                         env=env, ready_pattern="^READY") for n in range(processes)]
    with Stack(specs, log_dir) as stack:
        stack.wait_ready(60)
        yield f"127.0.0.1:{port}", [stack.pid(spec.name) for spec in specs]


def call_costs(before: dict, after: dict, method: str) -> dict[str, float]:
    """What one call of ``method`` made the api do between two scrapes of its /metrics
    (:func:`motcua_dev.platform.scrape`): publishes, confirms waited, store writes and commits,
    S3 PUTs, each divided by the calls of ``method`` answered in between."""
    def delta(series: str, **labels: str) -> float:
        return sum(value - before.get(key, 0.0) for key, value in after.items()
                   if key[0] == series and all(dict(key[1]).get(k) == v for k, v in labels.items()))

    calls = delta("motcua_grpc_requests_total", method=method) or 1.0
    return {"publish": delta("motcua_publishes_total") / calls,
            "confirm": delta("motcua_publish_confirms_total") / calls,
            "writes": delta("motcua_store_writes_total") / calls,
            "commits": delta("motcua_store_commits_total") / calls,
            "s3 put": delta("motcua_s3_requests_total", method="PUT") / calls,
            "s3 other": (delta("motcua_s3_requests_total") - delta("motcua_s3_requests_total", method="PUT")) / calls}


# -- documents ----------------------------------------------------------------------------------


def pdf_document(size: int, seed: int = 0, title: str = "motcua benchmark document") -> bytes:
    """A valid PDF of exactly ``size`` bytes: one page of text plus an unreferenced stream of
    random (incompressible) bytes; starts with ``%PDF-``, ends with ``%%EOF``, correct xref."""
    rng = random.Random(seed)
    text = f"BT /F1 14 Tf 72 770 Td ({title}) Tj ET".encode()

    def build(pad: bytes) -> bytes:
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(pad), pad),
        ]
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % (len(objects) + 1, xref)
        return bytes(out)

    pad_len = 0
    for _ in range(10):  # the digits of /Length and startxref move with the padding: converge
        length = len(build(b"\0" * pad_len))
        if length == size:
            return build(rng.randbytes(pad_len))
        pad_len = max(0, pad_len + size - length)
    raise ValueError(f"cannot build a PDF of exactly {size} bytes")


# -- /proc --------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/status (VmRSS, VmHWM, ...), in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0]) * 1024
    return values


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, ``clear_refs`` 5); False where refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    status = proc_status(pid)
    return status["VmHWM"] <= status["VmRSS"] + 1024 * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """The live processes started by ``pid``, their children, and so on (e.g. a signing pool)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its live descendants (a child's CPU reaches its parent's figures
    only once it has ended and been waited for)."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            total += cpu_seconds(each)
    return total


class PeakSampler:
    """RSS of a process polled every ``interval`` in a thread: a cross-check of VmHWM."""

    def __init__(self, pid: int, interval: float = 0.005):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def find_pid(comm: str) -> int | None:
    """The pid of a running process by its command name (e.g. ``beam.smp``, RabbitMQ's VM)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == comm:
                    return int(entry)
    return None
