"""Several server processes for one api (motcua.api_processes), with a real service's api (notify's:
its own store, broker and S3 connections in each process) started as the platform starts it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from motcua_dev.devstack import eventually, pid_alive
from motcua_dev.harness import private_vhost
from motcua_dev.platform import scrape
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from motcua.api_processes import reserve_port, usable_cpus

READY = re.compile(r"^READY notify api listening on 127\.0\.0\.1:(\d+)$", re.M)
METRICS = re.compile(r"^METRICS notify-api (\S+)$", re.M)


def test_usable_cpus_follow_the_affinity_and_the_cgroup_limit(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path) == affinity  # no cpu.max: the affinity
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path) == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: one process
    assert usable_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(affinity + 7) * 100000} 100000\n")  # above the affinity
    assert usable_cpus(tmp_path) == affinity


def test_the_metrics_module_imports_before_the_multiprocess_directory_exists(tmp_path):
    # An api's parent makes PROMETHEUS_MULTIPROC_DIR after importing; a series without labels would
    # open its file there at import (a label-less Counter killed every server process at start).
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-yet")}
    done = subprocess.run([sys.executable, "-c", "import motcua.metrics, motcua.grpcsupport"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "not-yet").exists()


def test_a_reserved_port_takes_no_connection_and_leaves_the_port_to_its_siblings():
    held = reserve_port("127.0.0.1", 0)
    port = held.getsockname()[1]
    try:
        with pytest.raises(ConnectionRefusedError):  # bound, not listening: nobody answers
            socket.create_connection(("127.0.0.1", port), timeout=5)
        sibling = reserve_port("127.0.0.1", port)  # SO_REUSEPORT: the same port again
        with sibling:
            sibling.listen()
            socket.create_connection(("127.0.0.1", port), timeout=5).close()  # the listening one answers
    finally:
        held.close()


@pytest.fixture
def api(tmp_path, amqp_uri, s3_endpoint):
    """Start notify's api with 2 server processes on port 0 (its own session); yields a handle with
    the process, its output, port, children and multiprocess metrics directory."""
    with private_vhost(amqp_uri) as vhost:
        metrics_dir = tmp_path / "metrics"
        env = {**os.environ, "MOTCUA_AMQP_URI": vhost, "MOTCUA_DATA_DIR": str(tmp_path / "data"),
               **s3_endpoint.env("motcua-test-api-processes"), "MOTCUA_API_PROCESSES": "2",
               "MOTCUA_GRPC_PORT": "0", "MOTCUA_GRPC_HEALTH_PORT": "0", "MOTCUA_METRICS_PORT": "0",
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONUNBUFFERED": "1"}
        out = tmp_path / "api.log"
        with open(out, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "notify.entrypoints.api"], env=env,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        handle = _Api(process, out, metrics_dir)
        try:
            assert eventually(lambda: READY.search(out.read_text()) or process.poll() is not None, timeout=90), \
                out.read_text()[-3000:]
            assert process.poll() is None, out.read_text()[-3000:]
            yield handle
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for pid in handle.started_children:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


class _Api:
    def __init__(self, process: subprocess.Popen, out: Path, metrics_dir: Path):
        self.process, self.out, self.metrics_dir = process, out, metrics_dir
        self.started_children: list[int] = []

    @property
    def port(self) -> int:
        return int(READY.search(self.out.read_text()).group(1))

    def children(self) -> list[int]:
        """The pids whose parent is the api's process (its servers, and multiprocessing's tracker)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        self.started_children = sorted(set(self.started_children) | set(found))
        return found

    def servers(self) -> list[int]:
        return [pid for pid in self.children() if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _check_health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # a channel of its own: a new connection
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status


def _calls_per_process(metrics_dir: Path, pids: list[int]) -> dict[int, float]:
    """Each server process's own count of gRPC calls, read from its own metrics files."""
    counts = {}
    for pid in pids:
        own = metrics_dir.parent / f"metrics-{pid}"
        own.mkdir()
        for path in metrics_dir.glob(f"*_{pid}.db"):
            shutil.copy(path, own / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(own))
        counts[pid] = sum(sample.value for family in registry.collect() for sample in family.samples
                          if sample.name == "motcua_grpc_requests_total")
    return counts


def test_two_processes_serve_one_port_printed_once_and_one_scrape_counts_them_all(api):
    output = api.out.read_text()
    assert len(READY.findall(output)) == 1 and api.port != 0
    servers = api.servers()
    assert len(servers) == 2
    calls = 40
    assert all(_check_health(api.port) == health_pb2.HealthCheckResponse.SERVING for _ in range(calls))

    per_process = _calls_per_process(api.metrics_dir, servers)
    assert sum(per_process.values()) == calls
    assert all(n > 0 for n in per_process.values()), per_process  # the kernel spread the connections
    pod = scrape(METRICS.search(output).group(1))
    assert pod[("motcua_grpc_requests_total", (("code", "OK"), ("method", "/grpc.health.v1.Health/Check")))] == calls
    assert pod[("process_cpu_seconds_total", ())] > 0


def test_sigterm_to_the_parent_stops_every_process(api):
    servers = api.servers()
    assert len(servers) == 2
    os.kill(api.process.pid, signal.SIGTERM)  # the parent alone: it must stop its children itself
    assert api.process.wait(timeout=60) == 0
    assert eventually(lambda: not any(pid_alive(pid) for pid in api.started_children), timeout=10), \
        [pid for pid in api.started_children if pid_alive(pid)]
    assert len(READY.findall(api.out.read_text())) == 1


def test_a_dead_child_ends_the_parent_non_zero_and_its_sibling(api):
    first, second = api.servers()
    os.kill(first, signal.SIGKILL)
    assert api.process.wait(timeout=60) == 1
    assert eventually(lambda: not any(pid_alive(pid) for pid in api.started_children), timeout=10)
    assert not pid_alive(second)
    assert "an api server ended: stopping the others" in api.out.read_text()
    assert "Traceback" not in api.out.read_text()


def test_sigterm_to_the_whole_group_stops_it_as_asked(api):
    """What a supervisor signalling the process group (make run, the test harness) does: every
    server and the parent get SIGTERM at once; a server stopping as asked is no failure."""
    servers = api.servers()
    os.killpg(api.process.pid, signal.SIGTERM)
    assert api.process.wait(timeout=60) == 0, api.out.read_text()[-2000:]
    assert eventually(lambda: not any(pid_alive(pid) for pid in servers), timeout=10)
    assert "Traceback" not in api.out.read_text()


def test_a_parent_killed_leaves_no_child(api):
    servers = api.servers()
    os.kill(api.process.pid, signal.SIGKILL)  # no chance to stop anything: the children follow by themselves
    api.process.wait(timeout=10)
    assert eventually(lambda: not any(pid_alive(pid) for pid in servers), timeout=30), \
        [pid for pid in servers if pid_alive(pid)]
