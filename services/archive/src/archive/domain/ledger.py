"""The archive's ledger: one entry per package, each holding the hash of the one before (a hash
chain), so that an entry edited, removed, inserted or moved afterwards shows.

An entry's hash is the SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8) over the
chained fields below, ``prev_hash`` included; the first entry's ``prev_hash`` is 64 zeros.
Fields outside :data:`CHAINED` (fixity results, legal hold, repairs) may change; these may not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
CHAINED = ("seq", "dossier_id", "code", "area", "package_sha256", "package_size", "copies", "retention",
           "retain_until", "lock_mode", "recorded_at", "prev_hash")


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({name: entry.get(name) for name in CHAINED})).hexdigest()


def seal(fields: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entry that follows ``previous`` (None: the first), with ``seq``, ``prev_hash`` and
    ``hash`` set."""
    entry = dict(fields)
    entry["seq"] = 1 if previous is None else int(previous["seq"]) + 1
    entry["prev_hash"] = GENESIS if previous is None else previous["hash"]
    entry["hash"] = entry_hash(entry)
    return entry


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head_hash: str
    broken_seq: int | None = None  # the first entry that does not hold
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"ledger OK: {self.entries} entries, head {self.head_hash}"
        return f"ledger BROKEN at entry {self.broken_seq}: {self.reason}"


def verify(entries: Iterable[Mapping[str, Any]]) -> Verdict:
    """Re-walk the chain in ``seq`` order (as stored); the first entry that breaks it."""
    previous: Mapping[str, Any] | None = None
    count = 0
    for entry in entries:
        expected_seq = 1 if previous is None else int(previous["seq"]) + 1
        seq = entry.get("seq")
        if seq != expected_seq:
            return Verdict(False, count, _head(previous), expected_seq,
                           f"expected entry {expected_seq} here, found entry {seq} (removed or reordered)")
        expected_prev = GENESIS if previous is None else previous["hash"]
        if entry.get("prev_hash") != expected_prev:
            return Verdict(False, count, _head(previous), seq,
                           "its prev_hash is not the hash of the entry before (an entry before it was "
                           "edited, removed or reordered)")
        if entry.get("hash") != entry_hash(entry):
            return Verdict(False, count, _head(previous), seq, "its content does not match its hash (edited)")
        previous = entry
        count += 1
    return Verdict(True, count, _head(previous))


def check_stamp(entries_by_seq: Mapping[int, Mapping[str, Any]], stamp: Mapping[str, Any]) -> str | None:
    """A head timestamp names (seq, hash): the entry must still be there with that hash. The
    reason it does not hold, else None (the token itself is checked by the timestamping adapter)."""
    entry = entries_by_seq.get(int(stamp["seq"]))
    if entry is None:
        return f"the entry {stamp['seq']} timestamped at {stamp.get('stamped_at')} is gone (ledger truncated)"
    if entry.get("hash") != stamp["head_hash"]:
        return f"the entry {stamp['seq']} no longer has the hash that was timestamped"
    return None


def _head(entry: Mapping[str, Any] | None) -> str:
    return GENESIS if entry is None else str(entry["hash"])
