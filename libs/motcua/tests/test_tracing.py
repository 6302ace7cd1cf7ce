"""motcua.tracing: off by default; with an OTLP endpoint, a span per gRPC call and per delivery,
under the traceparent received, exported over OTLP/HTTP to a real HTTP receiver started here."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from motcua import tracing
from motcua.grpcsupport import build_server
from motcua.messaging.consuming import Delivery, MessageHandling
from motcua.store.memory import MemoryStore

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Receiver(BaseHTTPRequestHandler):
    requests: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.requests.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.requests.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    tracing.shutdown()
    server.shutdown()


def spans() -> list:
    found = []
    for path, body in Receiver.requests:
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest.FromString(body)
        found += [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    return found


def test_tracing_is_off_without_an_endpoint():
    assert tracing.configure(SimpleNamespace(otlp_endpoint=None), "intake-api") is False
    with tracing.span("x", "server", TRACEPARENT, {}) as span:
        assert span is None


def test_a_call_and_a_delivery_become_spans_of_the_trace_they_came_with(collector):
    assert tracing.configure(SimpleNamespace(otlp_endpoint=collector), "routing-worker")
    server, port, _ = build_server([], lambda s: None, "127.0.0.1", 0, False, workers=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                      metadata=[("traceparent", TRACEPARENT)])
    finally:
        server.stop(None).wait(5)
    store = MemoryStore()
    from motcua.messaging.consuming import ProcessedMessage

    handling = MessageHandling("routing", store.collection(ProcessedMessage), publisher=None, retry_delays_ms=[100])
    delivery = Delivery(body=b"{}", headers={"message-id": "m-1", "traceparent": TRACEPARENT},
                        content_type="application/json", queue="routing.bim-son")
    assert handling.run(delivery, lambda d: None) == "processed"
    tracing.flush()
    by_name = {s.name: s for s in spans()}
    call = by_name["/grpc.health.v1.Health/Check"]
    consumed = by_name["routing.bim-son process"]
    for span in (call, consumed):
        assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == "00f067aa0ba902b7"
    attributes = {a.key: a.value.string_value for a in consumed.attributes}
    assert attributes["motcua.outcome"] == "processed" and attributes["messaging.message.id"] == "m-1"
    assert {a.key: a.value.string_value for a in call.attributes}["rpc.grpc.status_code"] == "OK"
