"""OpenTelemetry traces across gRPC and AMQP, exported by OTLP/HTTP when configured; off by default.

The platform already carries a W3C ``traceparent`` from the gRPC call that started a dossier's
step (metadata ``traceparent``) through every message it causes (header ``traceparent``). With
``MOTCUA_OTLP_ENDPOINT`` set (e.g. ``http://otel-collector:4318``), every process records:

  a SERVER span per gRPC call        (name: the method; attributes rpc.method, rpc.grpc.status_code)
  a CONSUMER span per delivery       (name: "<queue> process"; messaging.destination.name,
                                      messaging.message.id, motcua.outcome)

each the child of the ``traceparent`` it received, so a dossier's journey through the services is
one trace (the messages a step sends carry the step's own ``traceparent`` on, so the spans of a
journey share its trace id). Unset: nothing is recorded, nothing is sent, the cost is one check.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)

_tracer: Any = None  # an opentelemetry Tracer once configured
_provider: Any = None


def configure(settings: Any, process: str) -> bool:
    """Start exporting spans if ``settings.otlp_endpoint`` is set; True when on."""
    global _tracer, _provider
    endpoint = getattr(settings, "otlp_endpoint", None)
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = process.rsplit("-", 1)[0]
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.instance.id": process}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    _provider, _tracer = provider, provider.get_tracer("motcua")
    log.info("traces exported", extra={"endpoint": endpoint})
    return True


def flush(timeout_ms: int = 5000) -> None:
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def shutdown() -> None:
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def _parent(traceparent: str | None) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None


@contextlib.contextmanager
def span(name: str, kind: str, traceparent: str | None, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A span (kind "server" or "consumer") under ``traceparent``; a no-op when tracing is off.
    Never raises on its own account: tracing must not fail the work it watches."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    try:
        from opentelemetry.trace import SpanKind

        manager = tracer.start_as_current_span(name, context=_parent(traceparent),
                                               kind=SpanKind.SERVER if kind == "server" else SpanKind.CONSUMER,
                                               attributes=dict(attributes), record_exception=False,
                                               set_status_on_exception=False)
        current = manager.__enter__()
    except Exception:  # noqa: BLE001 - no span, the work goes on
        log.debug("span not started", exc_info=True)
        yield None
        return
    try:
        yield current
    finally:
        with contextlib.suppress(Exception):
            manager.__exit__(None, None, None)


def set_attribute(current: Any, key: str, value: Any) -> None:
    if current is not None:
        with contextlib.suppress(Exception):
            current.set_attribute(key, value)
