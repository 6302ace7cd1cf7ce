"""gRPC at the edge: one table from errors to status codes, a server with health, (optional)
reflection, (optional) mutual TLS and an access list, and request fingerprints for request-id
idempotency.

The api process of each service runs grpcio in plain threads (grpcio cannot run in an
eventlet-patched process); servicers decode the request, call the application layer and encode
the answer. Errors raised below the edge are turned into status codes here and only here, with
messages of bounded length (:func:`status_details`). Bytes that do not decode as the method's
request message end INVALID_ARGUMENT here too, for every method of every service (grpcio's own
answer would be INTERNAL with a traceback in the log).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import logging
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from motcua import access, api_processes, errors, logs, metrics, tracing
from motcua.access import AccessList
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
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
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


# The longest status message sent, in characters. grpcio percent-encodes a message's non-ASCII
# bytes into the grpc-message trailer (a Vietnamese letter: up to 9 bytes), and clients refuse
# trailers over 8 KiB by default (RESOURCE_EXHAUSTED instead of the status): 512 characters stay
# under 4.7 KiB whatever they are.
MAX_DETAILS = 512
# A run of non-blank characters longer than what errors.quote() makes of a value (QUOTE_LIMIT
# characters, the quotes, an ellipsis) and a punctuation mark: an id, a code, a token or a text a
# caller sent, echoed whole.
_LONG_RUN = re.compile(rf"\S{{{errors.QUOTE_LIMIT + 5},}}")


def status_details(message: str) -> str:
    """A status message as it may be sent: every run of non-blank characters longer than a quoted
    value (``QUOTE_LIMIT`` characters, quotes, ellipsis, a punctuation mark) cut to its first
    ``QUOTE_LIMIT`` + 1 and an ellipsis, the whole at most ``MAX_DETAILS`` characters. Messages
    start with the field (``field: reason``), so the field always survives."""
    short = _LONG_RUN.sub(lambda run: run.group()[:errors.QUOTE_LIMIT + 1] + "…", message)
    return short if len(short) <= MAX_DETAILS else short[:MAX_DETAILS - 1] + "…"


def request_fingerprint(request: Message, ignore: Iterable[str] = ("request_id",)) -> str:
    """SHA-256 of a request's type and deterministic encoding, without its request id: two requests
    with the same id and the same fingerprint are the same request retried. Every state-changing
    RPC of every service fingerprints its whole request here, and its use case keeps the
    fingerprint with what the request changed: the same id with another fingerprint — another
    field, or another method's request — is AlreadyExists."""
    copy = type(request)()
    copy.CopyFrom(request)
    for name in ignore:
        copy.ClearField(name)
    digest = hashlib.sha256(request.DESCRIPTOR.full_name.encode() + b"\n")
    digest.update(copy.SerializeToString(deterministic=True))
    return digest.hexdigest()


@dataclass(frozen=True)
class ServerTls:
    """Mutual TLS: the server's certificate chain and key, and the CA that issues agencies'
    client certificates (every caller must present one; its common name names the agency).
    ``revoked`` holds the serial numbers the CA's revocation list names: a caller presenting one
    is refused (UNAUTHENTICATED) before anything else, as grpcio's TLS cannot read a CRL."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes
    revoked: frozenset[int] = frozenset()

    @classmethod
    def from_files(cls, cert: str | Path, key: str | Path, client_ca: str | Path,
                   crl: str | Path | None = None) -> ServerTls:
        ca = Path(client_ca).read_bytes()
        return cls(Path(cert).read_bytes(), Path(key).read_bytes(), ca,
                   revoked_serials(Path(crl).read_bytes(), ca) if crl else frozenset())

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.private_key, self.cert_chain)],
                                           root_certificates=self.client_ca, require_client_auth=True)


def revoked_serials(crl_pem: bytes, client_ca_pem: bytes) -> frozenset[int]:
    """The serial numbers of the certificate revocation list(s) in ``crl_pem``, each checked to be
    signed by one of the CAs in ``client_ca_pem`` (ValueError otherwise: a forged list must not
    stop agencies, and a wrong file must not pass for an empty list)."""
    from cryptography import x509

    authorities = x509.load_pem_x509_certificates(client_ca_pem)
    serials: set[int] = set()
    blocks = [b"-----BEGIN X509 CRL-----" + part for part in crl_pem.split(b"-----BEGIN X509 CRL-----")[1:]]
    if not blocks:
        raise ValueError("the revocation list file holds no PEM X509 CRL")
    for block in blocks:
        crl = x509.load_pem_x509_crl(block)
        if not any(crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key()) for ca in authorities):
            raise ValueError(f"a revocation list of {crl.issuer.rfc4514_string()} is not signed by the client CA")
        serials.update(revoked.serial_number for revoked in crl)
    return frozenset(serials)


@functools.lru_cache(maxsize=4096)
def _serial_of(pem: bytes) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).serial_number


def _refuse_revoked(revoked: frozenset[int], context: grpc.ServicerContext) -> None:
    if not revoked:
        return
    for pem in context.auth_context().get("x509_pem_cert") or []:
        if _serial_of(bytes(pem)) in revoked:
            raise errors.Unauthenticated("the client certificate is revoked (on the CA's revocation list)")


def server_security(settings: Any) -> tuple[ServerTls | None, AccessList | None]:
    """Mutual TLS and the access list as the settings ask for them: TLS needs its three files
    together, and an access list without TLS could identify nobody, so it is refused."""
    files = (settings.grpc_tls_cert, settings.grpc_tls_key, settings.grpc_tls_client_ca)
    if any(files) and not all(files):
        raise ValueError("mutual TLS needs MOTCUA_GRPC_TLS_CERT, MOTCUA_GRPC_TLS_KEY and MOTCUA_GRPC_TLS_CLIENT_CA")
    crl = getattr(settings, "grpc_tls_crl", None)
    if crl and not all(files):
        raise ValueError("MOTCUA_GRPC_TLS_CRL needs mutual TLS (MOTCUA_GRPC_TLS_CERT, _KEY and _CLIENT_CA)")
    tls = ServerTls.from_files(*files, crl=crl) if all(files) else None
    access_list = AccessList.load(settings.grpc_access_list) if settings.grpc_access_list else None
    if access_list is not None and tls is None:
        raise ValueError("MOTCUA_GRPC_ACCESS_LIST needs mutual TLS: without client certificates no agency "
                         "can be identified")
    return tls, access_list


def caller_agency(context: grpc.ServicerContext) -> str | None:
    """The agency calling: its client certificate's common name (None without mutual TLS)."""
    names = context.auth_context().get("x509_common_name") or []
    return names[0].decode() if names else None


class _ErrorMapping(grpc.ServerInterceptor):
    """Turns exceptions from servicers into status codes, with a message the caller can act on,
    binds the request id to the log context and, with an access list, authorizes the caller."""

    def __init__(self, access_list: AccessList | None = None, revoked: frozenset[int] = frozenset()):
        self._gate = _Gate(access_list, revoked)

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        metadata = dict(handler_call_details.invocation_metadata or ())
        request_id = metadata.get("x-request-id")
        for kind in ("unary_unary", "stream_unary", "unary_stream", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                decode = _Decoding(handler_call_details.method, handler.request_deserializer)
                wrapped = _guard(behaviour, handler_call_details.method, request_id, self._gate,
                                 decode, handler.request_streaming, handler.response_streaming)
                return handler._replace(request_deserializer=decode.deserializer, **{kind: wrapped})
        return handler


class _Undecodable:
    """What grpcio hands the servicer, in place of a request, for bytes that did not decode."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class _Decoding:
    """A method's request deserializer that never raises: grpcio answers a deserializer's exception
    (or a None) with INTERNAL "Exception deserializing request!" and logs a traceback, before any
    servicer or interceptor code runs. Undecodable bytes become an :class:`_Undecodable` instead,
    which :func:`_guard` turns into INVALID_ARGUMENT with a short message and one log line."""

    def __init__(self, method: str, deserializer: Callable[[bytes], Any] | None):
        self._method = method
        self._deserializer = deserializer
        message = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
        self.type_name = getattr(message, "full_name", "") or "the method's request message"
        self.deserializer = self._deserialize if deserializer is not None else None

    def _deserialize(self, data: bytes) -> Any:
        try:
            request = self._deserializer(data)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - whatever the bytes make the parser raise
            # protobuf: "Error parsing message with type '<type>': Wire format was corrupt"
            return _Undecodable(str(exc).rpartition(": ")[2][:80] or type(exc).__name__)
        return _Undecodable("the deserializer returned nothing") if request is None else request

    def check(self, request: Any, number: int | None = None) -> Any:
        """``request`` itself, or InvalidArgument when it did not decode (logged in one line)."""
        if not isinstance(request, _Undecodable):
            return request
        which = "request" if number is None else f"request message {number}"
        log.warning("undecodable request", extra={"method": self._method, "reason": request.reason,
                                                  "message_number": number})
        raise errors.InvalidArgument("request", f"{which} is not a valid {self.type_name} "
                                                f"(the bytes do not decode: {request.reason})")

    def stream(self, requests: Iterable[Any]) -> Iterator[Any]:
        for number, request in enumerate(requests, start=1):
            yield self.check(request, number)


def _guard(behaviour: Callable, method: str, request_id: str | None, gate: _Gate,
           decode: _Decoding, request_streaming: bool, response_streaming: bool) -> Callable:
    """``behaviour`` with the caller authorized, its request(s) checked as decoded, and every error
    turned into its status (a streamed answer's errors too, as it is iterated)."""

    def decoded(request_or_iterator: Any) -> Any:
        return decode.stream(request_or_iterator) if request_streaming else decode.check(request_or_iterator)

    def guarded(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
        with bind(request_id=request_id):
            try:
                with _authorized(gate, context, method):
                    return behaviour(decoded(request_or_iterator), context)
            except Exception as exc:  # noqa: BLE001 - every failure ends as a status
                _abort(exc, context, method)

    def guarded_stream(request_or_iterator: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with bind(request_id=request_id):
            try:
                with _authorized(gate, context, method):
                    yield from behaviour(decoded(request_or_iterator), context)
            except Exception as exc:  # noqa: BLE001 - every failure ends as a status
                _abort(exc, context, method)

    return metrics.rpc(method, guarded_stream if response_streaming else guarded, response_streaming)


@dataclass(frozen=True)
class _Gate:
    """Who may call: the access list, and the serials of revoked client certificates."""

    access_list: AccessList | None
    revoked: frozenset[int] = frozenset()


@contextlib.contextmanager
def _authorized(gate: _Gate, context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """A revoked certificate is refused whatever the method; then, with an access list, the
    caller's grant for this call (PermissionDenied without one)."""
    _refuse_revoked(gate.revoked, context)
    access_list = gate.access_list
    token = access.enter(access_list.authorize(caller_agency(context), method)) if access_list is not None else None
    try:
        yield
    finally:
        if token is not None:
            access.leave(token)


def _abort(exc: Exception, context: grpc.ServicerContext, method: str) -> None:
    """End the call with the status ``exc`` maps to (raises, as ``context.abort`` does)."""
    if isinstance(exc, errors.DomainError):
        context.abort(status_for(exc), status_details(str(exc)))
    if context.code() is not None:
        raise exc  # the servicer already aborted with its own status
    code = status_for(exc)
    log.error("rpc failed", extra={"method": method, "code": code.name}, exc_info=exc)
    detail = str(exc) if code is not grpc.StatusCode.INTERNAL else "internal error"
    context.abort(code, status_details(detail))


# glibc's mallopt parameter and the size from which every allocation gets its own mapping.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def return_large_buffers_to_the_os() -> bool:
    """Make glibc serve every allocation of ``MMAP_THRESHOLD`` or more with its own mapping, which
    free() gives back to the OS at once. By default glibc raises that threshold up to 32 MiB as
    large blocks are freed, so the 1 MiB chunks and 5 MiB parts of a streamed upload end up in
    the heaps of grpcio's threads and stay there: measured, a 50 MiB UploadDocument left the api
    process 43 MiB larger (and as large after the upload) for 17 MiB of Python objects at the
    peak; with a fixed threshold, +25 MiB at the peak and back to the start afterwards. Costs
    a mmap/munmap per large buffer (none on a 100 KiB submission). False where there is no
    glibc (the call is skipped)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def build_server(
    service_names: Iterable[str],
    add_servicers: Callable[[grpc.Server], None],
    host: str,
    port: int,
    reflection_on: bool,
    workers: int = 16,
    tls: ServerTls | None = None,
    access_list: AccessList | None = None,
    health_port: int | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started-not-yet grpcio server with health (every service SERVING once started) and
    reflection when asked; with ``tls``, on a mutual-TLS port; with ``access_list``, calls are
    authorized by the caller's certificate. Returns the server, the bound port and the health
    servicer. Also sets the process's allocator to give large buffers back to the OS
    (:func:`return_large_buffers_to_the_os`): an api process streams uploads. ``reuse_port``:
    bind with SO_REUSEPORT, beside the other server processes of the api
    (:mod:`motcua.api_processes`); otherwise a port in use is an error, as it should be."""
    return_large_buffers_to_the_os()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         interceptors=[_ErrorMapping(access_list, tls.revoked if tls else frozenset())],
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                  ("grpc.so_reuseport", int(reuse_port))])
    add_servicers(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if reflection_on:
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        address = f"{host}:{port}"
        bound = server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
    except RuntimeError as exc:  # what grpcio raises now (older versions returned 0)
        raise OSError(f"cannot bind gRPC server to {host}:{port}") from exc
    if bound == 0:
        raise OSError(f"cannot bind gRPC server to {host}:{port}")
    if health_port is not None:
        server = _WithHealthPort(server, _health_only_server(health_servicer, host, health_port, reuse_port))
    return server, bound, health_servicer


def _health_only_server(health_servicer: health.HealthServicer, host: str, port: int,
                        reuse_port: bool = False) -> grpc.Server:
    """A plaintext server answering grpc.health.v1.Health only (the api's own status): what the
    kubelet probes while the api port asks every caller for a client certificate."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", int(reuse_port))])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise OSError(f"cannot bind the gRPC health port {host}:{port}") from exc
    if bound == 0:
        raise OSError(f"cannot bind the gRPC health port {host}:{port}")
    log.info("gRPC health served in plaintext", extra={"port": bound})
    return server


class _WithHealthPort:
    """The api server and its health-only server, started and stopped together."""

    def __init__(self, server: grpc.Server, health_server: grpc.Server):
        self._server = server
        self._health = health_server

    def start(self) -> None:
        self._server.start()
        self._health.start()

    def stop(self, grace: float | None) -> threading.Event:
        done = threading.Event()
        api_stopped = self._server.stop(grace)

        def wait() -> None:
            api_stopped.wait()
            self._health.stop(None).wait()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
@dataclass(frozen=True)
class Api:
    """What an api process serves, built in the process that serves it (each of an api's server
    processes connects to the store, S3 and the broker on its own): its servicers, and what to
    close once it stopped serving."""

    add_servicers: Callable[[grpc.Server], None]
    on_stop: Callable[[], None] = lambda: None


def serve(name: str, settings: Any, service_names: Iterable[str], build: Callable[[Any], Api]) -> int:
    """Run an api until SIGTERM or SIGINT: its metrics endpoint and traces
    (:func:`motcua.metrics.serve`), the server ``build_server`` makes with the settings' host,
    port, reflection, workers, mutual TLS, access list and plaintext health port, serving what
    ``build(settings)`` makes; prints ``READY <name> listening on host:port`` once serving (what the
    supervisor and the harness wait for); on a signal, lets calls in flight finish (5 s), then
    closes what the api built (``Api.on_stop``).

    With ``MOTCUA_API_PROCESSES`` above 1 (0: the usable CPUs), as many server processes serve the
    port, each calling ``build`` itself (:mod:`motcua.api_processes`): ``build`` must be a
    module-level function, and the entrypoint's ``main`` must run only under ``__main__``."""
    processes = api_processes.processes_wanted(settings)
    if processes > 1:
        return api_processes.run(name, settings, service_names, build, processes, serve_in_child)
    api = build(settings)
    metrics.serve(settings, name.replace(" ", "-"))  # the process's metrics endpoint and traces
    tls, access_list = server_security(settings)
    server, port, _ = build_server(service_names, api.add_servicers, settings.grpc_host, settings.grpc_port,
                                   settings.grpc_reflection, settings.grpc_workers, tls=tls,
                                   access_list=access_list, health_port=settings.grpc_health_port)

    def ready() -> None:
        log.info("api ready", extra={"port": port})
        print(f"READY {name} listening on {settings.grpc_host}:{port}", flush=True)

    return _serve_until_signal(server, api, ready)


def serve_in_child(name: str, settings: Any, service_names: Iterable[str], build: Callable[[Any], Api],
                   port: int, health_port: int | None, ready: Callable[[], None]) -> int:
    """One of an api's several server processes (:mod:`motcua.api_processes`): logs and traces of
    its own, its own infrastructure (``build``), the api's port and health port bound with
    SO_REUSEPORT beside its siblings; ``ready()`` once serving. The parent serves the metrics."""
    logs.configure(name.replace(" ", "-"), settings.log_level)
    tracing.configure(settings, name.replace(" ", "-"))
    api = build(settings)
    tls, access_list = server_security(settings)
    server, _, _ = build_server(service_names, api.add_servicers, settings.grpc_host, port,
                                settings.grpc_reflection, settings.grpc_workers, tls=tls,
                                access_list=access_list, health_port=health_port, reuse_port=True)
    return _serve_until_signal(server, api, ready)


def _serve_until_signal(server: grpc.Server, api: Api, ready: Callable[[], None]) -> int:
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    server.start()
    ready()
    stopped.wait()
    server.stop(grace=5).wait()
    api.on_stop()
    return 0
