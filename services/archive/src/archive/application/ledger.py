"""The ledger as a whole: re-walk the chain (and the head timestamps), timestamp the head, put a
package under legal hold. Entries are appended by the Archivist."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archive.application.ports import Offload, Timestamper, Vault, direct
from archive.domain import ledger
from motcua.errors import NotFound
from motcua.unit_of_work import UnitOfWork, UnitsOfWork

PAGE = 500


@dataclass(frozen=True)
class LedgerReport:
    chain: ledger.Verdict
    stamps: int = 0
    stamp_problem: str | None = None
    timestamped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.stamp_problem is None

    def lines(self) -> list[str]:
        out = [str(self.chain)]
        if self.stamp_problem:
            out.append(f"timestamps BROKEN: {self.stamp_problem}")
        elif self.timestamped:
            out.append(f"timestamps OK: {self.stamps} tokens over the head")
        else:
            out.append("not timestamped: no RFC 3161 token over the head (MOTCUA_TSA_URL unset or no stamp yet)")
        return out + self.notes


@dataclass
class Ledger:
    uows: UnitsOfWork
    schema: type
    stamp_schema: type
    timestamper: Timestamper | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    offload: Offload = direct

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in sequence order (paged; as stored)."""
        collection = self.uows.start().collection(self.schema)
        last = 0
        while True:
            page = collection.find({"seq": {"$gt": last}}, sort=[("seq", 1)], limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            last = page[-1]["seq"]

    def verify(self) -> LedgerReport:
        entries = list(self.entries())
        verdict = ledger.verify(entries)
        stamps = self.uows.start().collection(self.stamp_schema).find({"seq": {"$gt": 0}}, sort=[("seq", 1)])
        by_seq = {int(e["seq"]): e for e in entries}
        problem = None
        for stamp in stamps:
            problem = ledger.check_stamp(by_seq, stamp)
            if problem is None and self.timestamper is not None:
                why = self.timestamper.check(base64.b64decode(stamp["token"]), bytes.fromhex(stamp["head_hash"]))
                problem = f"the token of entry {stamp['seq']} does not hold: {why}" if why else None
            if problem:
                break
        notes = []
        if stamps and self.timestamper is None and problem is None:
            notes.append("tokens not re-checked: MOTCUA_TSA_URL unset (only their (seq, hash) were compared)")
        return LedgerReport(verdict, len(stamps), problem, bool(stamps), notes)

    def stamp_head(self) -> dict[str, Any] | None:
        """Timestamp the head entry when it is newer than the last stamp; the stamp, or None."""
        if self.timestamper is None:
            return None
        head = self.uows.start().collection(self.schema).find({}, sort=[("seq", -1)], limit=1)
        if not head:
            return None
        seq = int(head[0]["seq"])
        if self.uows.start().get(self.stamp_schema, f"{seq:012d}") is not None:
            return None
        token = self.offload(self.timestamper.stamp, bytes.fromhex(head[0]["hash"]))
        stamp = {"_id": f"{seq:012d}", "seq": seq, "head_hash": head[0]["hash"], "stamped_at": self.clock(),
                 "tsa_url": self.timestamper.url, "token": base64.b64encode(token).decode()}

        def add(uow: UnitOfWork) -> None:
            if uow.get(self.stamp_schema, stamp["_id"]) is None:
                uow.add(self.stamp_schema, stamp)
                uow.commit()
        self.uows.run(add, what="ledger head stamp")
        return stamp

    def find(self, code: str) -> dict[str, Any]:
        found = self.uows.start().collection(self.schema).find({"code": code}, limit=1)
        if not found:
            raise NotFound(f"no archived package for dossier {code[:64]!r}")
        return found[0]

    def legal_hold(self, code: str, on: bool, vaults: Sequence[Vault], reason: str = "") -> dict[str, Any]:
        """Set or clear the legal hold on every version of both copies (the S3 server then refuses
        their deletion whatever the retention); recorded on the entry."""
        entry = self.find(code)
        current = entry.get("fixity", {}).get("current") or {}
        by_name = {v.name: v for v in vaults}
        for copy in entry["copies"]:
            versions = {copy["version_id"], current.get(copy["name"], copy["version_id"])}
            for version in sorted(versions):
                self.offload(by_name[copy["name"]].hold, copy["key"], version, on)

        def record(uow: UnitOfWork) -> None:
            doc = uow.get(self.schema, entry["_id"])
            uow.save(self.schema, {**doc, "legal_hold": on, "legal_hold_reason": reason})
            uow.commit()
        self.uows.run(record, what=f"legal hold of {code}")
        return {**entry, "legal_hold": on}
