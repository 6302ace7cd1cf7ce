"""RFC 3161 timestamps of the ledger head, from the TSA at ``MOTCUA_TSA_URL`` (pyHanko's
HTTPTimeStamper), and their check: the token's message imprint must be the head's hash and its
CMS signature must verify, by a TSA certificate chaining to ``MOTCUA_TRUST_ROOTS`` when given
(else to the certificate the token carries: integrity, not identity)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from asn1crypto import cms, tsp
from pyhanko.sign.timestamps import HTTPTimeStamper


class HttpTimestamper:
    """archive.application.ports.Timestamper over HTTP."""

    def __init__(self, url: str, timeout: float = 10, trust_roots: Path | None = None):
        self.url = url
        self._timeout = timeout
        self._roots = _load_roots(trust_roots) if trust_roots else None

    def stamp(self, digest: bytes) -> bytes:
        async def request() -> cms.ContentInfo:
            return await HTTPTimeStamper(self.url, timeout=self._timeout).async_timestamp(digest, "sha256")
        return asyncio.run(request()).dump()

    def check(self, token: bytes, digest: bytes) -> str | None:
        try:
            info = cms.ContentInfo.load(token)
            signed = info["content"]
            tst = signed["encap_content_info"]["content"].parsed
            if not isinstance(tst, tsp.TSTInfo):
                return "not a timestamp token"
            imprint = tst["message_imprint"]
            if imprint["hash_algorithm"]["algorithm"].native != "sha256":
                return "imprint is not SHA-256"
            if imprint["hashed_message"].native != digest:
                return "its message imprint is not the hash of that entry"
            return _signature_problem(signed, self._roots)
        except (ValueError, TypeError, KeyError) as exc:
            return f"unreadable token ({type(exc).__name__})"


def _load_roots(path: Path) -> list:
    from asn1crypto import pem, x509

    data = Path(path).read_bytes()
    return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]


def _signature_problem(signed: cms.SignedData, roots: list | None) -> str | None:
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    certs = [c.chosen for c in signed["certificates"]]
    context = ValidationContext(trust_roots=roots or certs, other_certs=certs, allow_fetching=False,
                                revocation_mode="soft-fail")
    try:
        digest = signed["encap_content_info"]["content"].parsed["message_imprint"]["hashed_message"].native
        status = asyncio.run(validate_tst_signed_data(signed, context, lambda algorithm: digest))
    except Exception as exc:  # noqa: BLE001 - any failure of the check is a verdict, not a crash
        return f"signature not verifiable ({type(exc).__name__}: {exc})"[:300]
    intact = status.get("intact") if isinstance(status, dict) else getattr(status, "intact", None)
    valid = status.get("valid") if isinstance(status, dict) else getattr(status, "valid", None)
    return None if intact and valid else "its signature does not verify"
