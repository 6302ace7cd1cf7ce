"""Archive's signature validator: the signing api's ``ValidatePdf`` over each signed PDF the
package holds, read from the platform's bucket (the :data:`archive.application.ports.CheckSignatures`
port)."""

from __future__ import annotations

from collections.abc import Iterable

from archive.domain.package import PackageFile, SignatureCheck
from motcua import errors
from motcua.sealing import SigningApiClient

OUTCOMES = {1: "valid", 2: "indeterminate", 3: "invalid"}  # motcua.signing.v1.Verdict


class SignatureValidator(SigningApiClient):
    """``CheckSignatures`` over the signing api: the verdict, each signature's signer, level and
    problems. A document the api refuses to read (not a PDF, larger than it takes) is recorded
    as not validated, with the api's reason; the api unreachable is Unavailable (the archiving is
    retried); the api answering for other bytes than the package's is an error, never recorded."""

    def __call__(self, file: PackageFile, chunks: Iterable[bytes]) -> SignatureCheck:
        import grpc

        from motcua.signing.v1 import signing_pb2

        # One unary call with the whole PDF (ValidatePdf), not ValidateDocument's stream: grpcio
        # consumes a request stream in a thread of its own, which in this eventlet-patched worker
        # is a green thread that never runs from the tpool thread calling (the call hung to its
        # deadline). A signed PDF is at most the signing api's document limit, a few MB.
        pdf = b"".join(chunks)
        try:
            answer = self._get_stub().ValidatePdf(signing_pb2.ValidatePdfRequest(pdf=pdf), timeout=self._timeout)
        except grpc.RpcError as exc:
            code = self.status_of(exc)
            reason = f"{code}: {exc.details() or ''}"
            if code in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"):  # not a PDF, too large: it never will be
                return SignatureCheck.not_validated(f"the signing api did not validate it: {reason}")
            raise self.error(code, f"validating {file.path} at {self.address}: {reason}") from None
        if answer.sha256 != file.sha256:
            raise errors.Unavailable(f"validating {file.path}: the signing api read {answer.sha256[:16]}…, "
                                     f"not the package's {file.sha256[:16]}…")
        reports = [f"{s.signer or s.field_name}: {s.level or 'no level'}, {OUTCOMES.get(s.verdict, 'unknown')}"
                   + (f" ({s.problems})" if s.problems else "") for s in answer.signatures]
        return SignatureCheck(OUTCOMES.get(answer.verdict, "indeterminate"), tuple(s.signer for s in answer.signatures),
                              "; ".join(reports) or "no signature found")
