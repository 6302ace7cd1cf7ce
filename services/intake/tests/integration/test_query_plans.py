"""Intake's hot lookups stay on their unique indexes (SQLite's EXPLAIN QUERY PLAN), whatever the
store holds: TrackDossier and every desk action find a dossier by its code, a submission looks for
its request id first. tests/perf/bench_store_scale.py measures TrackDossier at 100,000 and 1,000,000
dossiers; here a plan that scans, or seeks another index, fails."""

from __future__ import annotations

import pytest
from motcua_dev.testing import MemoryObjects, RecordingPublisher, recorded_queries

from intake.adapters.records import RECORDS, DossierRecord
from intake.application.dossiers import Dossiers, SubmitDossier
from intake.domain.submission import Applicant, IncomingDocument
from motcua.messaging.outbox import Outbox
from motcua.unit_of_work import UnitsOfWork

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture
def dossiers(sqlite_store, catalog, limits, clock) -> Dossiers:
    return Dossiers(UnitsOfWork(sqlite_store, Outbox(RecordingPublisher())), MemoryObjects(), catalog, limits,
                    RECORDS, clock=clock)


def submit(dossiers: Dossiers, request_id: str) -> str:
    documents = [IncomingDocument(name=f"{c}.pdf", media_type="application/pdf", content=PDF + c.encode(),
                                  component=c) for c in ("to-khai", "giay-chung-sinh")]
    return dossiers.submit(SubmitDossier(
        request_id=request_id, fingerprint="f1", procedure_code="1.001193", receiving_unit="phuong-ba-dinh",
        applicant=Applicant(full_name="Trần Thị C", identity_number="038190000123"), documents=documents)).code


def test_tracking_finds_the_dossier_by_its_code_through_the_unique_index(dossiers, sqlite_store):
    code = submit(dossiers, "req-plans-0001")
    collection = sqlite_store.collection(DossierRecord)
    with recorded_queries(collection) as asked:
        dossiers.track(code)
        submit(dossiers, "req-plans-0001")  # a retry: found by its request id
    assert [collection.query_plan(f, s, limit) for f, s, limit in asked] == [
        "SEARCH dossiers USING INDEX ux_dossiers__code (<expr>=?)",
        "SEARCH dossiers USING INDEX ux_dossiers__request_id (<expr>=?)"]
