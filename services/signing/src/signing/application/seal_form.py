"""Use case: seal a form the platform issues (forms 01–06, the stop notice) with the issuing
unit's organisation signature, for intake and routing through ``SigningService.SealDocument``.

The port ``seal(pdf, SealRequest) -> SignedPdf`` is the signer pool's ``seal`` (the same
processes, token session and PAdES code as the worker's result signing,
:mod:`signing.adapters.signer_pool`); it raises ``SigningRefused`` (FAILED_PRECONDITION naming the
unit) when the unit has no enrolled, valid seal and ``Unavailable`` when the TSA or the CA does not
answer. Nothing is stored here: the caller stores the sealed form (content-addressed) and announces it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from motcua.errors import FailedPrecondition, InvalidArgument
from signing.domain import SealRequest, SignedPdf, check_pdf_bytes

Seal = Callable[[bytes, SealRequest], SignedPdf]


@dataclass(frozen=True)
class SealedForm:
    data: bytes
    sha256: str
    level: str
    signer: str
    signed_at: datetime | None


class SealForm:
    def __init__(self, seal: Seal | None, max_bytes: int, why_not: str = ""):
        self._seal = seal
        self._max_bytes = max_bytes
        self._why_not = why_not  # why this api cannot seal (not configured), when ``seal`` is None

    def __call__(self, pdf: bytes, unit: str, label: str = "") -> SealedForm:
        request = SealRequest(unit=unit, label=label)
        if len(pdf) > self._max_bytes:
            raise InvalidArgument("pdf", f"the document is larger than {self._max_bytes} bytes")
        check_pdf_bytes(pdf)
        if self._seal is None:
            raise FailedPrecondition(f"this signing api cannot seal: {self._why_not}")
        signed = self._seal(pdf, request)
        seal = signed.signatures[-1] if signed.signatures else None
        return SealedForm(data=signed.data, sha256=hashlib.sha256(signed.data).hexdigest(), level=signed.level,
                          signer=seal.signer_name if seal else "",
                          signed_at=(seal.timestamped_at or seal.signed_at) if seal else None)
