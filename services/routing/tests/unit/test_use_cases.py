"""Routing's use cases on fake ports (in-memory store, a recording publisher, a fake draft
renderer), fed through the worker's own decoding of work messages: milliseconds, no broker."""

from __future__ import annotations

import pytest
from motcua_dev.testing import memory_units_of_work, work_data

from motcua.errors import Conflict
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import build_work
from motcua.work.v1 import work_pb2
from routing.adapters.instances import INSTANCES
from routing.application.officials import Officials
from routing.application.repository import Instances
from routing.application.systems import NotOpenYet
from routing.entrypoints.messages import dispatcher

AREA = "dong-son"
CODE = "000.01.06.H56-261002-0001"
DRAFT = {"key": "routing/d1/aa", "sha256": "aa" * 32, "size": 3, "media_type": "application/pdf", "name": "du-thao.pdf"}


@pytest.fixture
def world(social, calendar, open_social):
    from motcua_dev.testing import SettableClock

    received_at = open_social().received_at
    clock = SettableClock(received_at)
    uows, publisher = memory_units_of_work()
    instances = Instances(uows, calendar, clock, records=INSTANCES)
    officials = Officials(instances, drafts=lambda instance, now: dict(DRAFT))
    return instances, officials, dispatcher(instances), publisher, social, received_at, calendar


def delivered(message) -> Delivery:
    out = message.to_outgoing()
    return Delivery(out.body, out.headers, out.content_type, f"routing.{AREA}")


def route(world, **changes):
    social, received_at, calendar = world[4], world[5], world[6]
    values = {"dossier_id": "d1", "code": CODE, "procedure_code": "1.001776", "receiving_unit": "xa-dong-tien",
              "area": AREA, "unit_id": "000.01.06.H56", "received_at": received_at,
              "due_at": social.due_from(received_at, calendar), "channel": "desk",
              "process": social.to_dict(), **changes}
    return build_work(service="routing", area=AREA, type="routing.route_dossier", id="route:d1",
                      data=work_data(work_pb2.RouteDossier, values))


def test_a_commune_dossier_is_opened_once_moved_by_officials_signed_and_ready(world, people):
    instances, officials, work, publisher = world[:4]
    work(delivered(route(world)))
    work(delivered(route(world)))  # delivered again: opened once
    assert publisher.types() == ["vn.motcua.dossier.assigned.v1"]
    assert publisher.published[0].routing_key == f"{AREA}.dossier.assigned"

    for official, action in ((people.desk, "complete"), (people.commune_reviewer, "complete"),
                             (people.district_reviewer, "complete"), (people.leader, "complete"),
                             (people.chairman, "approve")):
        officials.act(f"{official.id}:{action}", CODE, official, action)
    signing = [m for m in publisher.published if m.headers.get("motcua-work-type") == "signing.sign_document"]
    assert [m.routing_key for m in signing] == [f"signing.{AREA}"]
    asked = work_pb2.SignDocument.FromString(signing[0].body)
    assert (asked.receiving_unit, asked.area, asked.document.key) == ("xa-dong-tien", AREA, DRAFT["key"])

    signed = build_work(service="routing", area=AREA, type="routing.signing_completed",
                        id=f"signed:{asked.signing_request_id}",
                        data=work_data(work_pb2.SigningCompleted, {
                            "signing_request_id": asked.signing_request_id, "dossier_id": "d1", "code": CODE,
                            "area": AREA, "receiving_unit": "xa-dong-tien", "signers": ["ct", "UBND huyện"],
                            "signed": {**DRAFT, "key": "signing/d1/bb"}}))
    before = len(publisher.published)
    work(delivered(signed))
    work(delivered(signed))  # a repeated report changes nothing and publishes nothing
    assert int(instances.get(dossier_id="d1").instance.status) == 9
    assert "vn.motcua.dossier.result_ready.v1" in publisher.types()[before:]
    ids = [m.id for m in publisher.published]
    assert len(ids) == len(set(ids))


def test_an_official_acting_on_a_stale_revision_is_refused_and_nothing_is_published(world, people):
    instances, officials, work, publisher = world[:4]
    work(delivered(route(world)))
    seen = instances.get(code=CODE).version
    officials.act("r1", CODE, people.desk, "complete", expected_version=seen)
    before = len(publisher.published)
    with pytest.raises(Conflict):
        officials.act("r2", CODE, people.commune_reviewer, "complete", expected_version=seen)
    assert len(publisher.published) == before


def test_a_report_before_its_dossier_is_open_is_retried_and_a_malformed_route_is_parked(world):
    instances, officials, work, publisher = world[:4]
    report = build_work(service="routing", area=AREA, type="routing.signing_completed", id="signed:x",
                        data=work_pb2.SigningCompleted(signing_request_id="x", dossier_id="d404", code="C", area=AREA))
    with pytest.raises(NotOpenYet):
        work(delivered(report))
    with pytest.raises(PermanentFailure, match="process"):
        work(delivered(route(world, process={"steps": [], "time_type": "working_days"})))
    assert instances.collection.count({}) == 0 and publisher.published == []
