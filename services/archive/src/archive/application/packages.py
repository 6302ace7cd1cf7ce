"""What the archive API asks: a package with its ledger entry, copies, retention and last fixity
result; a short-lived download URL; a fixity check now (with the bag's own validation); the
packages of an area and period, paged."""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.application.fixity import Fixity
from archive.application.ledger import Ledger
from archive.application.ports import Offload, Vault, direct
from motcua.access import require_area
from motcua.errors import InvalidArgument, NotFound
from motcua.messaging.topology import SLUG_RE
from motcua.objects import ObjectRef

MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_CODE = 64


@dataclass(frozen=True)
class DownloadUrl:
    url: str
    expires_at: datetime
    sha256: str


@dataclass(frozen=True)
class Verification:
    fixity: dict[str, Any]
    bag_problem: str | None


@dataclass
class Packages:
    ledger: Ledger
    fixity: Fixity
    vaults: Sequence[Vault]
    objects: Any  # motcua.objects.ObjectStore of the platform's documents
    schema: type
    check_bag: Callable[[Path], str | None]  # why a packed bag does not validate (None: it does)
    url_ttl: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    offload: Offload = direct

    def get(self, code: str) -> dict[str, Any]:
        entry = self.ledger.find(_code(code))
        require_area(entry["area"])  # the calling agency's access list
        return entry

    def download_url(self, code: str, path: str = "", copy: str = "") -> DownloadUrl:
        entry = self.get(code)
        expires = self.clock() + self.url_ttl
        if path:
            document = next((d for d in entry.get("documents", ()) if d["path"] == path), None)
            if document is None or "key" not in document:
                raise NotFound(f"package {entry['code']} has no document {path[:200]!r}")
            ref = ObjectRef(document["key"], document["sha256"], document["size"], document["media_type"])
            return DownloadUrl(self.objects.presigned_get(ref, self.url_ttl), expires, document["sha256"])
        name = copy or "primary"
        stored = next((c for c in entry["copies"] if c["name"] == name), None)
        if stored is None:
            raise InvalidArgument("copy", f"must be one of {', '.join(c['name'] for c in entry['copies'])}")
        version = (entry.get("fixity", {}).get("current") or {}).get(name, stored["version_id"])
        vault = next(v for v in self.vaults if v.name == name)
        return DownloadUrl(vault.url(stored["key"], version, self.url_ttl), expires, entry["package_sha256"])

    def verify(self, code: str) -> Verification:
        entry = self.get(code)
        result = self.fixity.check(entry)
        good = next((f for f in result["copies"] if f["state"] in ("ok", "overwritten")), None)
        if good is None:
            return Verification(result, "no copy holds the package")
        vault = next(v for v in self.vaults if v.name == good["copy"])

        def check() -> str | None:
            with tempfile.TemporaryDirectory(prefix="motcua-verify-") as tmp:
                path = Path(tmp) / "package.tar"
                with open(path, "wb") as out:
                    for chunk in vault.read(good["key"], good["version_id"]):
                        out.write(chunk)
                return self.check_bag(path)
        return Verification(result, self.offload(check))

    def list(self, area: str, archived_from: datetime | None, archived_to: datetime | None, page_size: int,
             page_token: str) -> tuple[list[dict[str, Any]], str]:
        if not area or not SLUG_RE.match(area):
            raise InvalidArgument("area", "is required: an area slug such as 'bim-son'")
        require_area(area)
        if page_size < 0 or page_size > MAX_PAGE:
            raise InvalidArgument("page_size", f"must be 0..{MAX_PAGE}")
        size = page_size or DEFAULT_PAGE
        after = _token(page_token)
        if archived_from and archived_to and archived_to <= archived_from:
            raise InvalidArgument("archived_to", "must be after archived_from")
        low = archived_from.astimezone(UTC).isoformat() if archived_from else ""
        if after is not None and after[0] > low:
            low = after[0]
        condition: dict[str, Any] = {"$gte": low}
        if archived_to:
            condition["$lt"] = archived_to.astimezone(UTC).isoformat()
        found = self.ledger.uows.start().collection(self.schema).find(
            {"area": area, "recorded_at": condition}, sort=[("recorded_at", 1), ("_id", 1)], limit=size + 64)
        if after is not None:
            found = [e for e in found if (e["recorded_at"], e["_id"]) > after]
        page = found[:size]
        more = len(found) > size
        token = _encode(page[-1]) if more and page else ""
        return page, token


def _code(code: str) -> str:
    if not code or len(code) > MAX_CODE or not code.isprintable():
        raise InvalidArgument("code", "is required: a dossier code such as 000.00.06.H56-261125-0001")
    return code


def _encode(entry: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([entry["recorded_at"], entry["_id"]]).encode()).decode()


def _token(token: str) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        recorded_at, entry_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(recorded_at, str) or not isinstance(entry_id, str):
            raise ValueError
        return recorded_at, entry_id
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidArgument("page_token", "is not a token this API gave") from None
