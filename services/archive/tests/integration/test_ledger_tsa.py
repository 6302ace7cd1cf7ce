"""The ledger head timestamped by the development PKI's RFC 3161 TSA over HTTP (motcua_dev.pki,
from the signing work), and verify-ledger checking the tokens: a truncated ledger or a token over
another hash is named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pki = pytest.importorskip("motcua_dev.pki", reason="the dev PKI with its TSA comes with the signing branch")

from motcua_dev.testing import memory_units_of_work  # noqa: E402

from archive.adapters.records import LedgerRecord, LedgerStampRecord  # noqa: E402
from archive.adapters.timestamps import HttpTimestamper  # noqa: E402
from archive.application.ledger import Ledger  # noqa: E402
from archive.domain import ledger  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    with pki.serving(tmp_path_factory.mktemp("pki")) as server:
        yield server


def test_the_head_is_timestamped_and_the_tokens_checked(tsa):
    uows, _ = memory_units_of_work()
    entries = uows.store.collection(LedgerRecord)
    previous = None
    for n in range(1, 4):
        previous = ledger.seal({"dossier_id": f"d{n}", "code": f"C-{n}", "area": "bim-son", "package_sha256": "a" * 64,
                                "package_size": 1, "copies": [], "retention": "10", "retain_until": "2036-01-01",
                                "lock_mode": "GOVERNANCE", "recorded_at": f"2026-12-0{n}T00:00:00+00:00"}, previous)
        entries.insert({**previous, "_id": f"{n:012d}", "fixity_due_at": datetime.now(UTC)})
    stamper = HttpTimestamper(tsa.tsa_url, trust_roots=tsa.root_pem_file)
    book = Ledger(uows, LedgerRecord, LedgerStampRecord, stamper)
    stamp = book.stamp_head()
    assert stamp["seq"] == 3 and book.stamp_head() is None  # the head did not move
    report = book.verify()
    assert report.ok and report.timestamped, report.lines()
    assert "timestamps OK: 1 tokens over the head" in report.lines()
    assert "imprint" in stamper.check(__import__("base64").b64decode(stamp["token"]), b"\x00" * 32)
    entries.delete("000000000003")  # the tail removed: the chain alone still holds ...
    broken = book.verify()
    assert broken.chain.ok and not broken.ok and "ledger truncated" in broken.stamp_problem  # ... the stamp does not
