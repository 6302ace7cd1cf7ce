"""motcua.metrics: the series every process exposes, a worker's health, the api's health port."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from motcua import metrics
from motcua.grpcsupport import build_server


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_consumer_health_is_ready_when_every_queue_consumes_and_dead_after_the_grace():
    now = [0.0]
    health = metrics.ConsumerHealth(clock=lambda: now[0])
    assert health.ready()[0] and health.live(300)[0]  # an api: no queue at all
    health.expect("routing.bim-son")
    health.expect("routing.ba-thuoc")
    assert health.ready() == (False, "no consumer on routing.ba-thuoc, routing.bim-son")
    health.up("routing.bim-son")
    health.up("routing.ba-thuoc")
    assert health.ready() == (True, "consuming")
    health.down("routing.bim-son")
    now[0] = 299.0
    assert not health.ready()[0] and health.live(300)[0]  # reconnecting: not ready, still alive
    now[0] = 301.0
    assert health.live(300) == (False, "no consumer for 300 s on routing.bim-son")
    health.up("routing.bim-son")
    assert health.live(300)[0] and health.ready()[0]


@dataclass
class Report:
    claimed: int = 0
    ok: bool = True
    facts: dict[str, int] = field(default_factory=dict)


def test_periodic_jobs_are_timed_their_failures_and_their_reports_counted():
    before = sample("motcua_timer_items_total", job="t-sweep", item="facts.overdue")
    claimed = sample("motcua_timer_items_total", job="t-sweep", item="claimed")
    assert metrics.timed_job("t-sweep", lambda: Report(3, True, {"overdue": 2})).claimed == 3
    assert sample("motcua_timer_items_total", job="t-sweep", item="facts.overdue") == before + 2
    assert sample("motcua_timer_items_total", job="t-sweep", item="claimed") == claimed + 3
    failures = sample("motcua_timer_failures_total", job="t-sweep")
    with pytest.raises(ZeroDivisionError):
        metrics.timed_job("t-sweep", lambda: 1 / 0)
    assert sample("motcua_timer_failures_total", job="t-sweep") == failures + 1
    assert sample("motcua_timer_duration_seconds_count", job="t-sweep") >= 2


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_endpoint_serves_metrics_readiness_and_liveness(monkeypatch):
    health = metrics.ConsumerHealth()
    monkeypatch.setattr(metrics._Handler, "health", health)
    settings = SimpleNamespace(metrics_port=0, metrics_host="127.0.0.1", consumer_lost_s=0.0)
    host, port = metrics.serve(settings, "test-worker")
    assert metrics.serve(SimpleNamespace(metrics_port=None), "off") is None
    base = f"http://{host}:{port}"
    metrics.message_handled("t.bim-son", "processed", 0.01)
    status, text = get(base + "/metrics")
    assert status == 200 and 'motcua_messages_total{outcome="processed",queue="t.bim-son"}' in text
    assert "process_cpu_seconds_total" in text or "python_info" in text
    health.expect("t.bim-son")
    assert get(base + "/readyz")[0] == 503 and get(base + "/livez")[0] == 503  # lost_s 0: at once
    health.up("t.bim-son")
    assert get(base + "/readyz") == (200, "consuming\n") and get(base + "/livez")[0] == 200
    assert get(base + "/other")[0] == 404


def test_the_api_counts_calls_by_status_and_answers_health_on_a_plaintext_port():
    health_port = free_port()
    server, port, _ = build_server([], lambda s: None, "127.0.0.1", 0, False, workers=2, health_port=health_port)
    server.start()
    try:
        method = "/grpc.health.v1.Health/Check"
        before = sample("motcua_grpc_requests_total", method=method, code="OK")
        missing = sample("motcua_grpc_requests_total", method=method, code="NOT_FOUND")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert stub.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as error:
                stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert sample("motcua_grpc_requests_total", method=method, code="OK") == before + 1
        assert sample("motcua_grpc_requests_total", method=method, code="NOT_FOUND") == missing + 1
        assert sample("motcua_grpc_request_duration_seconds_count", method=method) >= 2
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(None).wait(5)
