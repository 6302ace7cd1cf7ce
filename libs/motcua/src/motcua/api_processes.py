"""Several server processes for one api (``MOTCUA_API_PROCESSES``), on one port.

An api process is bound by Python's GIL to about one core. To use a pod's cores, the api's
process (the *parent*) starts N server processes (the *children*) that all listen on the gRPC
port with SO_REUSEPORT, so the kernel spreads the callers' connections over them:

- the parent binds the port first (a SO_REUSEPORT socket it never listens on, so it takes no
  connection): port 0 becomes one real port that every child binds, and the port stays the pod's
  while it runs; the same for the plaintext health port;
- children are *spawned* (a fresh interpreter, ``multiprocessing``'s "spawn"), never forked, and
  each builds its own infrastructure (store, S3 client, AMQP publisher) after it starts: nothing
  holding a connection or a thread is ever copied into another process;
- the parent prints ``READY <name> listening on host:port`` once, after every child serves, and
  serves the pod's one metrics endpoint: the children write their series into a per-pod directory
  (prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``) that the parent's scrape
  adds up (:func:`motcua.metrics.pod_registry`), so one scrape sees the whole pod;
- SIGTERM or SIGINT to the parent stops every child as a single api stops (calls in flight
  finish); a child that dies ends the others and the parent with status 1, so the supervisor
  (Kubernetes) restarts the pod whole; a child whose parent dies gets SIGTERM (PR_SET_PDEATHSIG):
  no process outlives the pod's first one.

With one process (``MOTCUA_API_PROCESSES=1``) none of this runs: the api serves in its own process
(:func:`motcua.grpcsupport.serve`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
STARTUP_TIMEOUT_S = 120.0  # a child imports the service and connects to its store, S3 and broker
STOP_TIMEOUT_S = 30.0  # a child's grace for calls in flight (5 s) and closing its infrastructure
_PR_SET_PDEATHSIG = 1


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its CPU affinity, lowered by a cgroup v2 CPU limit
    (``cpu.max``: quota and period, rounded up), at least 1."""
    cpus = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(1, cpus)


def processes_wanted(settings: Any) -> int:
    """``MOTCUA_API_PROCESSES``, 0 meaning as many as :func:`usable_cpus`."""
    return int(settings.api_processes) or usable_cpus()


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT but not listening: it holds the port
    (``port`` 0: a free one, read from the socket) for processes that bind it the same way, and
    receives no connection itself."""
    family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """The pod's directory of multiprocess metrics, set in ``PROMETHEUS_MULTIPROC_DIR`` for the
    children: the operator's (emptied first: the files of a previous run would add up) or a fresh
    temporary one, removed at the end."""
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        yield given
        return
    directory = tempfile.mkdtemp(prefix="motcua-metrics-")
    os.environ[MULTIPROC_DIR] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(directory, ignore_errors=True)


def run(name: str, settings: Any, service_names: Iterable[str], build: Callable[[Any], Any], processes: int,
        serve_child: Callable[..., int]) -> int:
    """Run ``processes`` children of api ``name`` until SIGTERM or SIGINT (0) or until one dies
    (1). ``serve_child(name, settings, service_names, build, port, health_port, ready)`` serves in a
    child and calls ``ready()`` once it does (:func:`motcua.grpcsupport.serve_in_child`)."""
    from motcua import metrics

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    api_socket = reserve_port(settings.grpc_host, settings.grpc_port)
    health_socket = (reserve_port(settings.grpc_host, settings.grpc_health_port)
                     if settings.grpc_health_port is not None else None)
    port = api_socket.getsockname()[1]
    health_port = health_socket.getsockname()[1] if health_socket is not None else None
    with metrics_directory() as directory, contextlib.closing(api_socket):
        context = multiprocessing.get_context("spawn")
        children, ready = [], []
        for number in range(processes):
            reader, writer = context.Pipe(duplex=False)
            child = context.Process(target=_child, name=f"{name} {number + 1}", daemon=False,
                                    args=(os.getpid(), serve_child, name, settings, list(service_names), build,
                                          port, health_port, writer))
            child.start()
            writer.close()
            children.append(child)
            ready.append(reader)
        try:
            if not _all_ready(children, ready, stopping):
                return 1 if not stopping.is_set() else 0
            metrics.serve(settings, name.replace(" ", "-"),
                          metrics.pod_registry(directory, lambda: [os.getpid(), *(c.pid for c in children)]))
            log.info("api ready", extra={"port": port, "processes": processes})
            print(f"READY {name} listening on {settings.grpc_host}:{port}", flush=True)
            return _supervise(children, stopping)
        finally:
            _stop(children)
            if health_socket is not None:
                health_socket.close()


def _all_ready(children: list, ready: list[Connection], stopping: threading.Event) -> bool:
    """Wait until every child said it serves; False when one died first, or on a signal."""
    waiting = dict(zip(ready, children, strict=True))
    sentinels = {child.sentinel: child for child in children}
    deadline = STARTUP_TIMEOUT_S
    while waiting and not stopping.is_set():
        if deadline <= 0:
            log.error("api processes did not start in time", extra={"waiting": len(waiting)})
            return False
        for done in wait([*waiting, *sentinels], timeout=0.5):
            if done in sentinels:
                child = sentinels[done]
                log.error("an api server ended at start", extra={"server": child.name, "exitcode": child.exitcode})
                return False
            else:
                with contextlib.suppress(EOFError, OSError):
                    done.recv()
                del waiting[done]
        deadline -= 0.5
    return not stopping.is_set()


def _supervise(children: list, stopping: threading.Event) -> int:
    """Until a signal (0) or a child's end: 1 when it failed or was killed (the pod must restart
    whole); 0 when it stopped as asked (a SIGTERM sent to the whole process group, as a
    supervisor may, reaches the children too)."""
    while not stopping.is_set():
        ended = wait([child.sentinel for child in children], timeout=0.5)
        if ended and not stopping.is_set():
            child = next(child for child in children if child.sentinel in ended)
            child.join()
            if child.exitcode == 0:
                log.info("an api server stopped as asked: stopping the others", extra={"server": child.name})
                return 0
            log.error("an api server ended: stopping the others", extra={
                "server": child.name, "pid": child.pid, "exitcode": child.exitcode})
            return 1
    return 0


def _stop(children: list) -> None:
    """SIGTERM every child still running, wait for them (calls in flight finish), then SIGKILL
    any left after ``STOP_TIMEOUT_S``."""
    for child in children:
        if child.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(STOP_TIMEOUT_S)
        if child.is_alive():
            log.error("an api server did not stop: killed", extra={"server": child.name, "pid": child.pid})
            child.kill()
            child.join()


def _child(parent: int, serve_child: Callable[..., int], name: str, settings: Any, service_names: list[str],
           build: Callable[[Any], Any], port: int, health_port: int | None, ready: Connection) -> None:
    _die_with(parent)

    def say_ready() -> None:
        ready.send(True)
        ready.close()

    raise SystemExit(serve_child(name, settings, service_names, build, port, health_port, say_ready))


def _die_with(parent: int) -> None:
    """Be sent SIGTERM when the parent dies (Linux), and stop now if it already has."""
    libc = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError):
        if libc:
            ctypes.CDLL(libc, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(1)
