"""Forms sealed by their issuing unit: the ``Sealer`` port intake's and routing's use cases
declare, and its adapter, a grpcio client of ``SigningService.SealDocument`` (the signing api),
on the client of the signing api archive's signature validator uses too.

``Sealer`` is a plain callable ``(pdf bytes, unit slug, label) -> sealed pdf bytes``. It raises
:class:`motcua.errors.Unavailable` when the signing api (or its TSA/CA) does not answer — a worker
message is then retried and an official's call answered UNAVAILABLE; nothing unsealed is stored
or published — and :class:`FailedPrecondition` (the unit has no enrolled, valid seal; the caller
is not granted SealDocument) or :class:`InvalidArgument` (not a sealable PDF) as the api answers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from motcua import errors


class Sealer(Protocol):
    def __call__(self, pdf: bytes, unit: str, label: str = "") -> bytes: ...


# the api's answer → the error the use case raises (anything else: the signing api is not usable now)
_ERRORS = {"INVALID_ARGUMENT": lambda m: errors.InvalidArgument("pdf", m),
           "FAILED_PRECONDITION": errors.FailedPrecondition,
           "PERMISSION_DENIED": lambda m: errors.FailedPrecondition(f"sealing refused to this service: {m}"),
           "UNAUTHENTICATED": lambda m: errors.FailedPrecondition(f"sealing refused to this service: {m}"),
           "NOT_FOUND": errors.FailedPrecondition, "UNIMPLEMENTED": errors.FailedPrecondition}


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None


class SigningApiClient:
    """A grpcio client of the signing api (``SigningService``) at ``address``: one channel for the
    process (grpcio channels are thread-safe), opened on first use; mutual TLS when the settings
    name this service's client certificate and key and the CA of the api's server certificate.
    Its kinds: :class:`SealingClient` (intake, routing) and archive's signature validator."""

    def __init__(self, address: str, *, timeout_s: float = 30.0, tls_ca: Path | None = None,
                 client_cert: Path | None = None, client_key: Path | None = None):
        if not address:
            raise ValueError("MOTCUA_SIGNING_ADDRESS is empty: the signing api cannot be called")
        if (client_cert or client_key) and not (client_cert and client_key and tls_ca):
            raise ValueError("mutual TLS to the signing api needs MOTCUA_GRPC_CLIENT_CERT, MOTCUA_GRPC_CLIENT_KEY "
                             "and MOTCUA_GRPC_CLIENT_CA")
        self.address = address
        self._timeout = timeout_s
        self._tls = (tls_ca, client_key, client_cert)
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stub: Any = None

    @classmethod
    def from_settings(cls, settings: Any) -> Any:
        return cls(settings.signing_address, timeout_s=settings.seal_timeout_s, tls_ca=settings.grpc_client_ca,
                   client_cert=settings.grpc_client_cert, client_key=settings.grpc_client_key)

    def _get_stub(self) -> Any:
        import grpc

        from motcua.signing.v1 import signing_pb2_grpc

        with self._lock:
            if self._stub is None:
                ca, key, cert = self._tls
                if ca:
                    credentials = grpc.ssl_channel_credentials(_read(ca), _read(key), _read(cert))
                    self._channel = grpc.secure_channel(self.address, credentials)
                else:
                    self._channel = grpc.insecure_channel(self.address)
                self._stub = signing_pb2_grpc.SigningServiceStub(self._channel)
            return self._stub

    @staticmethod
    def status_of(exc: Any) -> str:
        """The status code's name of a ``grpc.RpcError`` ("UNKNOWN" without one)."""
        return exc.code().name if exc.code() is not None else "UNKNOWN"

    @staticmethod
    def error(code: str, message: str) -> Exception:
        """What a use case raises for the api's answer ``code``: the api's refusals as
        :mod:`motcua.errors` name them; anything else Unavailable (the api is not usable now)."""
        make = _ERRORS.get(code)
        return make(message) if make else errors.Unavailable(message)

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._stub = None


class SealingClient(SigningApiClient):
    """``Sealer`` over the signing api's ``SealDocument``."""

    def __call__(self, pdf: bytes, unit: str, label: str = "") -> bytes:
        import grpc

        from motcua.signing.v1 import signing_pb2

        try:
            answer = self._get_stub().SealDocument(signing_pb2.SealDocumentRequest(pdf=pdf, unit=unit, label=label),
                                                   timeout=self._timeout)
        except grpc.RpcError as exc:
            code = self.status_of(exc)
            raise self.error(code, f"sealing by {unit!r} at {self.address}: {code}: {exc.details() or ''}") from None
        return answer.pdf
