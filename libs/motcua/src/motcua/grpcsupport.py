"""gRPC at the edge: one table from errors to status codes, a server with health and (optional)
reflection, and request fingerprints for request-id idempotency.

The api process of each service runs grpcio in plain threads (grpcio cannot run in an
eventlet-patched process); servicers decode the request, call the application layer and encode
the answer. Errors raised below the edge are turned into status codes here and only here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from motcua import errors
from motcua.logs import bind
from motcua.objects import IntegrityError, ObjectMissing
from motcua.store.port import StoreError, VersionConflict

log = logging.getLogger(__name__)

# The one table mapping failures to status codes (first matching class wins).
STATUS_FOR: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (VersionConflict, grpc.StatusCode.ABORTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (ObjectMissing, grpc.StatusCode.DATA_LOSS),
    (IntegrityError, grpc.StatusCode.DATA_LOSS),
    (StoreError, grpc.StatusCode.INTERNAL),
)


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS_FOR:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def request_fingerprint(request: Message, ignore: Iterable[str] = ("request_id",)) -> str:
    """SHA-256 of a request's deterministic encoding, without its request id: two requests with
    the same id and the same fingerprint are the same request retried."""
    copy = type(request)()
    copy.CopyFrom(request)
    for name in ignore:
        copy.ClearField(name)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class _ErrorMapping(grpc.ServerInterceptor):
    """Turns exceptions from servicers into status codes, with a message the caller can act on,
    and binds the request id to the log context."""

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        metadata = dict(handler_call_details.invocation_metadata or ())
        request_id = metadata.get("x-request-id")
        for kind in ("unary_unary", "stream_unary", "unary_stream", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                wrapped = _guard(behaviour, handler_call_details.method, request_id)
                return handler._replace(**{kind: wrapped})
        return handler


def _guard(behaviour: Callable, method: str, request_id: str | None) -> Callable:
    def guarded(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
        with bind(request_id=request_id):
            try:
                return behaviour(request_or_iterator, context)
            except errors.DomainError as exc:
                context.abort(status_for(exc), str(exc))
            except Exception as exc:
                if context.code() is not None:
                    raise  # the servicer already aborted with its own status
                code = status_for(exc)
                log.error("rpc failed", extra={"method": method, "code": code.name}, exc_info=True)
                detail = str(exc) if code is not grpc.StatusCode.INTERNAL else "internal error"
                context.abort(code, detail)
    return guarded


def build_server(
    service_names: Iterable[str],
    add_servicers: Callable[[grpc.Server], None],
    host: str,
    port: int,
    reflection_on: bool,
    workers: int = 16,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started-not-yet grpcio server with health (every service SERVING once started) and
    reflection when asked. Returns the server, the bound port and the health servicer."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         interceptors=[_ErrorMapping()],
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                  ("grpc.so_reuseport", 0)])
    add_servicers(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if reflection_on:
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # what grpcio raises now (older versions returned 0)
        raise OSError(f"cannot bind gRPC server to {host}:{port}") from exc
    if bound == 0:
        raise OSError(f"cannot bind gRPC server to {host}:{port}")
    return server, bound, health_servicer
