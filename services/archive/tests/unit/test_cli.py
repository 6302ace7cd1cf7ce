"""`python -m archive verify-ledger` on a stored ledger: passes, then names the first broken entry
after an entry is edited (exit 1); says "not timestamped" without a TSA."""

from __future__ import annotations

from datetime import UTC, datetime

from archive.__main__ import main
from archive.adapters.records import LedgerRecord
from archive.domain import ledger
from motcua.store import SqliteStore


def test_verify_ledger_passes_then_names_the_edited_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOTCUA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MOTCUA_TSA_URL", raising=False)
    monkeypatch.delenv("MOTCUA_MONGO_URI", raising=False)
    store = SqliteStore(tmp_path / "archive.sqlite3")
    entries, previous = store.collection(LedgerRecord), None
    for n in range(1, 4):
        previous = ledger.seal({"dossier_id": f"d{n}", "code": f"C-{n}", "area": "bim-son", "package_sha256": "a" * 64,
                                "package_size": 1, "copies": [], "retention": "10", "retain_until": "2036-01-01",
                                "lock_mode": "GOVERNANCE", "recorded_at": f"2026-12-0{n}T00:00:00+00:00"}, previous)
        entries.insert({**previous, "_id": f"{n:012d}", "fixity_due_at": datetime.now(UTC)})
    assert main(["verify-ledger"]) == 0
    out = capsys.readouterr().out
    assert "ledger OK: 3 entries" in out and "not timestamped" in out
    second = entries.get("000000000002")
    entries.replace({**second, "retention": "1"}, second["version"])  # someone shortens a retention
    store.close()
    assert main(["verify-ledger"]) == 1
    assert "ledger BROKEN at entry 2: its content does not match its hash (edited)" in capsys.readouterr().out
