"""Errors of the signing domain, each a subclass of the platform's answer a caller can act on
(:mod:`motcua.errors`), so the gRPC edge and the workers map them without knowing this service."""

from __future__ import annotations

from motcua.errors import FailedPrecondition, InvalidArgument, NotFound


class NotAPdf(InvalidArgument):
    """The document to sign is not a PDF we can sign (checked by content, never by name)."""

    def __init__(self, reason: str, field: str = "document"):
        super().__init__(field, f"not a signable PDF: {reason}")


class UnknownSigner(NotFound):
    """No certificate and key are known for the named signer."""

    def __init__(self, signer_id: str, role: str | None = None):
        what = f"{role} signing key" if role else "signing key"
        super().__init__(f"no {what} is known for signer {signer_id!r}")
        self.signer_id = signer_id
        self.role = role


class SigningOrderViolation(InvalidArgument):
    """The signers break the rule: the official's personal signature first, the organisation seal
    only after it."""

    def __init__(self, reason: str):
        super().__init__("signers", reason)


class AlreadySigned(FailedPrecondition):
    """The draft already carries a signature (a draft is signed once, from scratch)."""

    def __init__(self, fields: list[str]):
        super().__init__(f"the document already carries signatures: {', '.join(fields)}")
        self.fields = fields


class SigningRefused(FailedPrecondition):
    """The request cannot be signed as it stands: an official or a unit without an enrolled key,
    or a certificate that is revoked, expired or untrusted. The reason names the signer or the
    certificate and why; nothing was signed. Routing puts the dossier back at its sign step."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
