"""Intake's use cases on fake ports (in-memory store and objects, a recording publisher), with the
sample catalog: milliseconds, no broker, no S3."""

from __future__ import annotations

import uuid

import pytest
from motcua_dev.testing import (
    FakeSealer,
    MemoryObjects,
    handle_as_a_worker,
    memory_units_of_work,
    sqlite_units_of_work,
)

from intake.adapters.forms import PDF_FORMS
from intake.adapters.records import RECORDS, DossierRecord
from intake.application.dossiers import Dossiers, SubmitDossier
from intake.application.forms import Forms
from intake.application.progress import Progress
from intake.domain.dossier import Status
from intake.domain.submission import Applicant, IncomingDocument
from intake.entrypoints.messages import dispatcher
from motcua.errors import AlreadyExists, FailedPrecondition
from motcua.events.v1 import events_pb2
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import build_event
from motcua.store import SqliteStore
from motcua.work.v1 import work_pb2

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
APPLICANT = Applicant(full_name="Trần Thị C", identity_number="038190000123", email="c@example.vn")


@pytest.fixture
def desk(catalog, limits, clock):
    uows, publisher = memory_units_of_work()
    objects = MemoryObjects()
    return Dossiers(uows, objects, catalog, limits, RECORDS, clock=clock, served_areas=["bim-son", "thanh-hoa"]), \
        uows, publisher, objects


def birth(unit: str, request_id: str | None = None, fingerprint: str = "f1") -> SubmitDossier:
    documents = [IncomingDocument(name=f"{c}.pdf", media_type="application/pdf", content=PDF + c.encode(), component=c)
                 for c in ("to-khai", "giay-chung-sinh")]
    return SubmitDossier(request_id=request_id or f"req-{uuid.uuid4()}", fingerprint=fingerprint,
                         procedure_code="1.001193", receiving_unit=unit, applicant=APPLICANT, documents=documents)


def test_a_ward_s_submission_is_stored_once_and_sent_to_its_town_s_area(desk):
    dossiers, uows, publisher, objects = desk
    command = birth("phuong-ba-dinh", request_id="req-ward-0001")
    first = dossiers.submit(command)
    again = dossiers.submit(command)  # a client's retry: the first answer, nothing sent again
    assert (again.id, again.code, again.status) == (first.id, first.code, Status.RECEIVED)
    assert (first.receiving_unit, first.area) == ("phuong-ba-dinh", "bim-son")
    assert uows.store.collection(DossierRecord).count({"area": "bim-son", "status": 2}) == 1
    assert len(objects.objects) == 2
    assert publisher.types() == ["vn.motcua.dossier.received.v1", "routing.route_dossier", "intake.render_form"]
    assert [m.routing_key for m in publisher.published] == ["bim-son.dossier.received", "routing.bim-son",
                                                           "intake.bim-son"]
    route = work_pb2.RouteDossier.FromString(publisher.published[1].body)
    assert (route.receiving_unit, route.area, [s.unit for s in route.process.steps][:1]) == (
        "phuong-ba-dinh", "bim-son", ["phuong-ba-dinh"])
    with pytest.raises(AlreadyExists):
        dossiers.submit(birth("phuong-ba-dinh", request_id="req-ward-0001", fingerprint="another payload"))


def test_a_unit_of_an_unserved_area_or_the_wrong_level_is_refused_before_anything_is_stored(desk):
    dossiers, uows, publisher, objects = desk
    with pytest.raises(FailedPrecondition, match="xa-dien-quang"):
        dossiers.submit(birth("xa-dien-quang"))  # Bá Thước's commune: no worker serves ba-thuoc here
    with pytest.raises(FailedPrecondition, match="1.001193"):
        dossiers.submit(birth("bim-son"))  # a commune procedure at the district
    assert objects.objects == {} and publisher.published == []
    assert uows.store.collection(DossierRecord).count({"area": "bim-son", "status": 2}) == 0


def test_a_broker_outage_leaves_the_dossier_stored_with_its_messages_for_the_relay(desk):
    dossiers, uows, publisher, objects = desk
    publisher.fail = True
    dossier = dossiers.submit(birth("phuong-lam-son"))
    stored = uows.store.collection(DossierRecord).get(dossier.id)
    assert [e["id"] for e in stored["outbox"]] and publisher.published == []  # nothing lost: the relay sends it


def test_the_worker_s_processed_records_ride_with_its_writes_and_a_progress_that_changes_nothing_keeps_none(
        tmp_path, catalog, limits, clock):
    """On SQLite, as the worker runs them: form 01 and its record in one commit, then the outbox's
    (2, was 3); the first dossier.assigned and its record in one (1, was 2); a later one that
    changes nothing, no commit at all (was 1). Redeliveries change nothing."""
    store = SqliteStore(tmp_path / "intake.sqlite3")
    try:
        uows, publisher = sqlite_units_of_work(store)
        objects = MemoryObjects()
        dossiers = Dossiers(uows, objects, catalog, limits, RECORDS, clock=clock, served_areas=["bim-son"])
        forms = Forms(uows, objects, catalog, "https://dichvucong.example.vn", RECORDS, PDF_FORMS, FakeSealer())
        handle = dispatcher(Progress(dossiers, forms))
        dossier = dossiers.submit(birth("phuong-ba-dinh"))
        (render,) = [m for m in publisher.published if m.routing_key == "intake.bim-son"]
        form_01 = Delivery(render.body, render.headers, render.content_type, "intake.bim-son")

        def assigned(step: str) -> Delivery:
            out = build_event(name="dossier.assigned", source="/motcua/routing", subject=dossier.code, area="bim-son",
                              data=events_pb2.DossierAssigned(dossier_id=dossier.id, code=dossier.code,
                                                              step=step)).to_outgoing()
            return Delivery(out.body, out.headers, out.content_type, "intake.bim-son")

        assert handle_as_a_worker(uows, handle, form_01) == ("processed", 2, True)
        assert handle_as_a_worker(uows, handle, form_01) == ("duplicate", 0, True)
        first, second = assigned("tiep-nhan"), assigned("tham-dinh")
        assert handle_as_a_worker(uows, handle, first) == ("processed", 1, True)
        assert handle_as_a_worker(uows, handle, second) == ("processed", 0, False)  # processing already
        assert handle_as_a_worker(uows, handle, first) == ("duplicate", 0, True)
        followed = dossiers.get(code=dossier.code)
        assert followed.status is Status.PROCESSING and followed.receipt is not None
        assert [row["action"] for row in followed.history].count("processing") == 1
    finally:
        store.close()
