"""Every level and every area: dossiers received by a commune, by a district and by a province-level
unit, in all three sample districts, travel to the archive through the five services running as
processes, as ``make run`` starts them (every area of the catalog served). An independent AMQP
subscriber counts every event once, under the area's routing key, with the receiving unit kept in
the payload; a commune procedure moves up to its district for the decision and back.

A unit whose area no worker serves is refused at the edge (FAILED_PRECONDITION), not accepted into
a queue nobody reads."""

from __future__ import annotations

import grpc
import pytest
from motcua_dev.devstack import Stack
from motcua_dev.harness import SAMPLE_PROCEDURES, Platform, journey, journeys_complete, sample_request, submit_all

from motcua.events.v1 import events_pb2
from motcua.intake.v1 import intake_pb2_grpc

pytestmark = pytest.mark.e2e

# (receiving unit, its area, procedure): a district, two of its communes (one procedure decided at
# the commune, one sent up to the district), for each sample district; and the province's land office.
DOSSIERS = [
    ("bim-son", "bim-son", "1.004616"),
    ("phuong-ba-dinh", "bim-son", "1.001193"),
    ("phuong-lam-son", "bim-son", "1.001776"),
    ("ba-thuoc", "ba-thuoc", "1.004616"),
    ("xa-luong-ngoai", "ba-thuoc", "1.001193"),
    ("thi-tran-canh-nang", "ba-thuoc", "1.001776"),
    ("tho-xuan", "tho-xuan", "1.004616"),
    ("xa-xuan-hoa", "tho-xuan", "1.001193"),
    ("xa-tho-xuong", "tho-xuan", "1.001776"),
    ("van-phong-dang-ky-dat-dai", "thanh-hoa", "1.004227"),
]
COMMUNE_TO_DISTRICT = "1.001776"


def test_dossiers_of_every_level_and_area_are_archived_with_every_event_once(platform: Platform):
    requests = [sample_request(unit, 700 + n, procedure_code=procedure)
                for n, (unit, _, procedure) in enumerate(DOSSIERS)]
    answers = submit_all(platform.intake_address, requests)
    where = {a.code: (unit, area, procedure) for a, (unit, area, procedure) in zip(answers, DOSSIERS, strict=True)}
    expected = {code: journey(SAMPLE_PROCEDURES[procedure][1]) for code, (_, _, procedure) in where.items()}

    assert platform.events.wait_until(journeys_complete(expected), timeout=240), platform.progress(set(where))

    by_subject = platform.events.by_subject()
    for code, (unit, area, procedure) in where.items():
        seen = by_subject[code]
        assert platform.events.distinct_types(code) == expected[code], (unit, procedure)
        twice = sorted({(e.type, e.headers.get("cloudEvents:source")) for e in seen
                        if [x.id for x in seen].count(e.id) > 1})
        assert not twice, f"{code}: event ids arrived twice: {twice}"
        assert {e.routing_key.split(".", 1)[0] for e in seen} == {area}, unit
        assert {e.area for e in seen} == {area}, unit
        (received,) = [events_pb2.DossierReceived.FromString(e.body) for e in seen
                       if e.type == "vn.motcua.dossier.received.v1"]
        assert (received.receiving_unit, received.area, received.district) == (unit, area, unit)
        returned = [events_pb2.DossierReturned.FromString(e.body) for e in seen
                    if e.type == "vn.motcua.dossier.returned.v1"]
        assert [(r.receiving_unit, r.area) for r in returned] == [(unit, area)]
        handling_units = {events_pb2.DossierAssigned.FromString(e.body).unit for e in seen
                          if e.type == "vn.motcua.dossier.assigned.v1"}
        if procedure == COMMUNE_TO_DISTRICT:  # reviewed, approved and signed at the district, returned here
            assert handling_units == {unit, area}, code
        else:
            assert handling_units == {unit}, code


def test_a_unit_whose_area_no_worker_serves_is_refused_at_the_edge(platform: Platform, tmp_path):
    spec, address = platform.extra_api("intake", "intake-api-bim-son-only", {"MOTCUA_AREAS": "bim-son"})
    with Stack([spec], tmp_path / "logs") as api, grpc.insecure_channel(address) as channel:
        api.wait_ready(timeout=60)
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        served = stub.SubmitDossier(sample_request("phuong-ngoc-trao", 800, procedure_code="1.001193"), timeout=30)
        assert served.code.startswith("000.02.06.H56-")
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubmitDossier(sample_request("xa-dien-quang", 801, procedure_code="1.001193"), timeout=30)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "xa-dien-quang" in refused.value.details() and "ba-thuoc" in refused.value.details()
