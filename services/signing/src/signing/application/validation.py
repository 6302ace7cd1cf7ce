"""The trust service's questions: is this PDF's signing valid (per signature and overall), and
which signed results did motcua produce for a dossier.

Ports (plain callables, given by the api entrypoint):

* ``validate(pdf) -> [SignatureReport]`` checks every signature (pyHanko, the trusted roots);
  raises ``NotAPdf`` (INVALID_ARGUMENT) for what is not a readable, unencrypted PDF;
* ``find(filter) -> [record dict]`` reads signing's records (``SigningRecord``);
* ``read(ref) -> bytes`` reads a stored object (checksum verified).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from motcua.errors import InvalidArgument, NotFound
from signing.domain import SignatureReport
from signing.domain.model import DOSSIER_CODE_RE

Validate = Callable[[bytes], list[SignatureReport]]
Find = Callable[[Mapping[str, Any]], list[dict[str, Any]]]
Read = Callable[[dict[str, Any]], bytes]


@dataclass(frozen=True)
class Validation:
    verdict: str  # valid | indeterminate | invalid
    signatures: tuple[SignatureReport, ...]
    sha256: str
    size: int


def overall(reports: Sequence[SignatureReport]) -> str:
    verdicts = {r.verdict for r in reports}
    if "invalid" in verdicts:
        return "invalid"
    return "valid" if verdicts == {"valid"} else "indeterminate"


class SigningQueries:
    def __init__(self, validate: Validate, find: Find, read: Read, max_bytes: int):
        self._validate = validate
        self._find = find
        self._read = read
        self.max_bytes = max_bytes

    def validate_bytes(self, data: bytes) -> Validation:
        import hashlib

        if not data:
            raise InvalidArgument("chunk", "no document was sent")
        if len(data) > self.max_bytes:
            raise InvalidArgument("chunk", f"the document is larger than {self.max_bytes} bytes")
        reports = self._validate(data)
        if not reports:
            raise InvalidArgument("document", "the PDF carries no signature")
        return Validation(overall(reports), tuple(reports), hashlib.sha256(data).hexdigest(), len(data))

    def validate_stored(self, code: str, sha256: str = "") -> Validation:
        results = self.signed_results(code)
        chosen = [r for r in results if not sha256 or r["signed"].get("sha256") == sha256]
        if not chosen:
            raise NotFound(f"no signed document {sha256 or ''} of dossier {code}".replace("  ", " "))
        return self.validate_bytes(self._read(dict(chosen[-1]["signed"])))

    def signed_results(self, code: str) -> list[dict[str, Any]]:
        if not isinstance(code, str) or not DOSSIER_CODE_RE.match(code):
            raise InvalidArgument("code", "must look like 000.00.06.H56-231027-0361")
        records = [r for r in self._find({"code": code}) if r.get("outcome", "signed") == "signed" and r.get("signed")]
        if not records:
            raise NotFound(f"dossier {code} has no signed result")
        return sorted(records, key=lambda r: r["signed_at"])
