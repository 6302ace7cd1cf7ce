"""The signing worker's process pool: the CPU work (PDF, hashing, stamps, CMS, validation of the
signers' chains) runs in child processes, each holding one token session, its signers, the TSA
client and the font for its whole life; the worker process only waits on a pipe.

A child is ``python -m signing.adapters.signer_pool`` speaking length-prefixed pickles over its
stdin/stdout (the parent made it: nothing else writes there). Under eventlet the pipes are green,
so a nameko worker waiting for a signature does not block the hub, with no tpool thread involved.
A child that dies is replaced; its request fails as Unavailable (the message is retried).

Every signing and sealing, in a child or in process, is timed here, the one place both the
worker's results and the api's forms pass (``motcua_signing_duration_seconds``).
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from motcua import metrics
from motcua.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from signing.domain import SealRequest, SignedPdf, SignerRole, SigningRefused, SigningRequest

_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class EngineConfig:
    pkcs11_module: str
    pkcs11_token: str
    pkcs11_pin_file: str
    trust_roots: str
    tsa_url: str | None
    lta: bool = False
    revocation: bool = True
    timeout_s: float = 10.0


def build_key_source(config: EngineConfig):
    from signing.adapters.keys import TokenKeySource
    from signing.adapters.token import TokenKeys

    keys = TokenKeys(config.pkcs11_module, config.pkcs11_token, config.pkcs11_pin_file)
    with open(config.trust_roots, "rb") as f:
        roots = f.read()
    source = TokenKeySource(keys, roots, config.tsa_url or None, lta=config.lta, timeout=config.timeout_s)
    if not config.revocation:
        source.validation_context = lambda: None  # B-T, no revocation check (development only)
    return source


def engine_config(settings) -> EngineConfig:
    """The engine of the signing settings (``signing.config.SigningSettings``): the worker's and the api's."""
    return EngineConfig(pkcs11_module=settings.pkcs11_module, pkcs11_token=settings.pkcs11_token,
                        pkcs11_pin_file=str(settings.pkcs11_pin_file), trust_roots=str(settings.trust_roots),
                        tsa_url=settings.tsa_url or None, lta=settings.signing_lta,
                        revocation=settings.signing_revocation, timeout_s=settings.signing_timeout_s)


SIGN, SEAL = "sign", "seal"  # what a child is asked: a result signed then sealed, or a form sealed


def sign_outcome(source, pdf: bytes, request: dict[str, Any], op: str = SIGN) -> tuple[str, Any]:
    """Sign (``op`` SIGN: a :class:`SigningRequest` as a dict) or seal (SEAL: a :class:`SealRequest`
    as a dict) and say how it went, as plain data (exceptions stay in the child)."""
    from signing.adapters.pdf import apply_seal, apply_signatures

    try:
        if op == SEAL:
            return "ok", apply_seal(pdf, SealRequest.from_dict(request), source)
        return "ok", apply_signatures(pdf, SigningRequest.from_dict(request), source)
    except SigningRefused as exc:
        return "refused", exc.reason
    except Unavailable as exc:
        return "unavailable", str(exc)
    except InvalidArgument as exc:
        return "invalid", str(exc)
    except (FailedPrecondition, NotFound) as exc:  # already signed, unknown signer...
        return "invalid", str(exc)
    except DomainError as exc:
        return "invalid", str(exc)


def raise_for(outcome: tuple[str, Any]) -> SignedPdf:
    """The signed PDF of an outcome, counted in this process (children serve no metrics), or its error."""
    kind, value = outcome
    if kind == "ok":
        _count(value)
        return value
    if kind == "refused":
        raise SigningRefused(value)
    if kind == "unavailable":
        raise Unavailable(value)
    if kind == "invalid":
        raise InvalidArgument("document", f"cannot be signed: {value}")
    raise Unavailable(f"the signing process failed: {value}")


def observed(op: str, started: float, outcome: tuple[str, Any]) -> tuple[str, Any]:
    """``outcome`` of a signing or sealing begun at ``started`` (``time.perf_counter``), recorded."""
    kind, value = outcome
    metrics.signing_done(op, value.level if kind == "ok" else "", kind, time.perf_counter() - started)
    return outcome


_SIGNATURE_KINDS = {SignerRole.PERSONAL: "official", SignerRole.SEAL: "seal"}


def _count(signed: SignedPdf) -> None:
    for signature in signed.signatures:
        metrics.signatures_made(_SIGNATURE_KINDS.get(signature.role, str(signature.role)))
    if signed.level == "B-LTA":  # one document timestamp closes the last signature's revision
        metrics.signatures_made("document_timestamp")


class InProcessSigner:
    """The same work in the calling process (tests, ``signing_processes = 0``)."""

    def __init__(self, config: EngineConfig):
        self._source = build_key_source(config)
        warm_up()

    def __call__(self, pdf: bytes, request: SigningRequest) -> SignedPdf:
        started = time.perf_counter()
        return raise_for(observed(SIGN, started, sign_outcome(self._source, pdf, request.to_dict())))

    def seal(self, pdf: bytes, request: SealRequest) -> SignedPdf:
        started = time.perf_counter()
        return raise_for(observed(SEAL, started, sign_outcome(self._source, pdf, request.to_dict(), SEAL)))

    def close(self) -> None:
        self._source.keys.close()


class _Child:
    def __init__(self, config: EngineConfig):
        self.proc = subprocess.Popen([sys.executable, "-m", "signing.adapters.signer_pool", json.dumps(asdict(config))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ.copy())

    def call(self, payload: bytes) -> bytes:
        self.proc.stdin.write(_HEADER.pack(len(payload)) + payload)
        self.proc.stdin.flush()
        (size,) = _HEADER.unpack(_read_exactly(self.proc.stdout, _HEADER.size))
        return _read_exactly(self.proc.stdout, size)

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


def _read_exactly(stream, size: int) -> bytes:
    """``size`` bytes from ``stream`` (a green pipe's read may return less than asked)."""
    parts, missing = [], size
    while missing:
        part = stream.read(missing)
        if not part:
            raise EOFError("the signing process ended")
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


class SignerPool:
    """``processes`` children; a call takes an idle one (waits otherwise)."""

    def __init__(self, config: EngineConfig, processes: int):
        self._config = config
        self._idle: queue.Queue[_Child] = queue.Queue()
        self._children = [_Child(config) for _ in range(max(1, processes))]
        for child in self._children:
            self._idle.put(child)

    def __call__(self, pdf: bytes, request: SigningRequest) -> SignedPdf:
        return self._ask(SIGN, pdf, request.to_dict())

    def seal(self, pdf: bytes, request: SealRequest) -> SignedPdf:
        return self._ask(SEAL, pdf, request.to_dict())

    def _ask(self, op: str, pdf: bytes, request: dict[str, Any]) -> SignedPdf:
        started = time.perf_counter()  # a wait for an idle child is part of what the caller waits
        child = self._idle.get()
        try:
            answer = child.call(pickle.dumps((op, pdf, request)))
        except (EOFError, OSError, BrokenPipeError) as exc:
            child.stop()
            replacement = _Child(self._config)
            self._children = [replacement if c is child else c for c in self._children]
            self._idle.put(replacement)
            observed(op, started, ("died", str(exc)))
            raise Unavailable(f"the signing process died ({exc}); the request is retried") from exc
        self._idle.put(child)
        return raise_for(observed(op, started, pickle.loads(answer)))  # noqa: S301 - our own child's answer

    def close(self) -> None:
        for child in self._children:
            child.stop()


def warm_up() -> None:
    """The stamp font cut now, when the process starts: not in the first dossier's signing."""
    from signing.adapters.pdf import stamp_font

    stamp_font()


def _serve(config: EngineConfig) -> int:
    source = build_key_source(config)
    warm_up()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exactly(stdin, _HEADER.size))
            op, pdf, request = pickle.loads(_read_exactly(stdin, size))  # noqa: S301 - our parent's request
        except EOFError:
            return 0  # the worker is gone
        try:
            outcome = sign_outcome(source, pdf, request, op)
        except Exception as exc:  # a bug: answer it rather than dying with the request
            outcome = ("error", f"{type(exc).__name__}: {str(exc)[:500]}")
        body = pickle.dumps(outcome)
        stdout.write(_HEADER.pack(len(body)) + body)
        stdout.flush()


if __name__ == "__main__":
    sys.exit(_serve(EngineConfig(**json.loads(sys.argv[1]))))
