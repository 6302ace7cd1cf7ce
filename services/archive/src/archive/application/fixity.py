"""Fixity: re-hash the copies of archived packages, record the result per package, and repair a
copy that is not what was written from a good one (a new version; the bad one is kept).

A sweep claims the packages checked longest ago one at a time (an atomic claim that moves the
package's ``fixity_due_at`` a lease ahead), so replicas never check the same package, and a
package whose checker crashed is taken again once the lease is over."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.application.ports import Offload, Vault, direct
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event
from motcua.protobufs import timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork

log = logging.getLogger(__name__)
SOURCE = "/motcua/archive"


@dataclass
class Fixity:
    uows: UnitsOfWork
    vaults: Sequence[Vault]
    schema: type  # the ledger record's schema
    interval: timedelta = timedelta(days=30)
    lease: timedelta = timedelta(minutes=15)
    batch: int = 20
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    offload: Offload = direct

    def sweep(self) -> list[dict[str, Any]]:
        """Check at most ``batch`` packages that are due; their results."""
        results = []
        entries = self.uows.start().collection(self.schema)
        for _ in range(self.batch):
            now = self.clock()
            claimed = entries.claim({"fixity_due_at": {"$lte": now}}, {"fixity_due_at": now + self.lease},
                                    sort=[("fixity_due_at", 1)])
            if claimed is None:
                break
            results.append(self.check(claimed))
        return results

    def check(self, entry: Mapping[str, Any], repair: bool = True) -> dict[str, Any]:
        """Re-hash every copy of the entry's package now, repair bad copies from a good one,
        record the result (and publish archive.fixity_failed per bad copy)."""
        now = self.clock()
        vaults = {v.name: v for v in self.vaults}
        current = dict(entry.get("fixity", {}).get("current") or {})
        findings = []
        for copy in entry["copies"]:
            version = current.get(copy["name"], copy["version_id"])
            findings.append(self._inspect(vaults[copy["name"]], copy, version, entry["package_sha256"]))
        good = [f for f in findings if f["state"] == "ok" or f["state"] == "overwritten"]
        events, repairs = [], []
        for f in findings:
            if f["state"] == "ok":
                continue
            repaired_version = ""
            if repair and good:
                source = next((g for g in good if g["copy"] != f["copy"]), good[0])
                repaired_version = self._repair(vaults[f["copy"]], vaults[source["copy"]], f["key"],
                                                source["version_id"], entry)
                current[f["copy"]] = repaired_version
                repairs.append({"copy": f["copy"], "reason": f["state"], "bad_version_id": f["bad_version_id"],
                                "repaired_version_id": repaired_version, "from": source["copy"],
                                "at": now.isoformat()})
            events.append(build_event(
                name="archive.fixity_failed", source=SOURCE, subject=entry["code"], area=entry["area"],
                data=events_pb2.ArchiveFixityFailed(
                    dossier_id=entry["dossier_id"], code=entry["code"], area=entry["area"], copy=f["copy"],
                    bucket=f["bucket"], key=f["key"], reason=f["state"], expected_sha256=entry["package_sha256"],
                    found_sha256=f["found_sha256"] or "", bad_version_id=f["bad_version_id"] or "",
                    repaired=bool(repaired_version), repaired_version_id=repaired_version,
                    detected_at=timestamp(now))))
            log.warning("fixity failed", extra={"code": entry["code"], "copy": f["copy"], "reason": f["state"],
                                                "repaired": bool(repaired_version)})
        state = "ok" if not events else ("repaired" if len(repairs) == len(events) else "damaged")
        result = {"state": state, "checked_at": now.isoformat(), "copies": findings, "current": current}
        self.uows.run(lambda uow: self._record(uow, entry["_id"], result, repairs, events),
                      what=f"fixity result of {entry['code']}")
        return result

    def _inspect(self, vault: Vault, copy: Mapping[str, Any], version: str, sha256: str) -> dict[str, Any]:
        key = copy["key"]
        found = self.offload(vault.digest, key, version)
        finding = {"copy": copy["name"], "bucket": copy["bucket"], "key": key, "version_id": version,
                   "found_sha256": found, "bad_version_id": None}
        if found is None:
            return {**finding, "state": "missing", "bad_version_id": version}
        if found != sha256:
            return {**finding, "state": "changed", "bad_version_id": version}
        latest = self.offload(vault.latest, key)
        if latest != version:  # a newer version (or a delete marker) hides the package
            other = self.offload(vault.digest, key, latest) if latest else None
            return {**finding, "state": "overwritten", "bad_version_id": latest or "delete-marker",
                    "found_sha256": other}
        return {**finding, "state": "ok"}

    def _repair(self, target: Vault, source: Vault, key: str, version: str, entry: Mapping[str, Any]) -> str:
        """The good bytes, checked on the way, written as a new locked version of the bad copy."""
        def copy() -> str:
            with tempfile.TemporaryDirectory(prefix="motcua-repair-") as tmp:
                path, digest, size = Path(tmp) / "package.tar", hashlib.sha256(), 0
                with open(path, "wb") as out:
                    for chunk in source.read(key, version):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                if digest.hexdigest() != entry["package_sha256"]:
                    raise RuntimeError(f"the good copy of {key} changed while it was read")
                return target.write(key, path, entry["package_sha256"], size,
                                    datetime.fromisoformat(entry["retain_until"]))
        return self.offload(copy)

    def _record(self, uow: UnitOfWork, entry_id: str, result: dict[str, Any], repairs: list[dict[str, Any]],
                events: list[Any]) -> None:
        doc = uow.get(self.schema, entry_id)
        doc = {**doc, "fixity": result, "fixity_due_at": self.clock() + self.interval,
               "repairs": [*doc.get("repairs", []), *repairs]}
        uow.save(self.schema, doc, events)
        uow.commit()
