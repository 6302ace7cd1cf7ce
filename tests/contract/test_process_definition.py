"""The process definition intake sends with ``routing.route_dossier`` is one routing accepts: for
every procedure of the sample catalog, at every unit that receives it, by either channel, what
intake's ``process_definition`` writes into the work message (``motcua.work.v1.RouteDossier``,
over the wire) is read by routing's edge and ``ProcessDefinition.from_dict``, and the step
deadlines it computes end exactly at the appointment intake computed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intake.adapters.catalog_file import load_catalog
from intake.application.events import process_message
from intake.config import DEFAULT_CATALOG
from intake.domain.lifecycle import Channel, due_date
from intake.domain.process import process_definition
from motcua.work.v1 import work_pb2
from motcua.worktime import vietnam_calendar
from routing.domain.process import ProcessDefinition
from routing.entrypoints.messages import route_body

CATALOG = load_catalog(DEFAULT_CATALOG)
CALENDAR = vietnam_calendar()
CASES = [(p.code, u.slug) for code in CATALOG.procedures for p in [CATALOG.procedure(code)]
         for u in CATALOG.units.values() if CATALOG.receives(u, p)]


def test_every_procedure_has_a_receiving_unit():
    assert {code for code, _ in CASES} == set(CATALOG.procedures)


@pytest.mark.parametrize("channel", [Channel.DESK, Channel.ONLINE])
@pytest.mark.parametrize("code, unit", CASES)
def test_routing_reads_what_intake_sends(code, unit, channel):
    procedure, receiving = CATALOG.procedure(code), CATALOG.unit(unit)
    sent = work_pb2.RouteDossier(
        process=process_message(process_definition(CATALOG, procedure, receiving, channel is Channel.ONLINE)))

    received = work_pb2.RouteDossier.FromString(sent.SerializeToString())  # over the wire
    process = ProcessDefinition.from_dict(route_body(received)["process"])

    assert [s.role.value for s in process.steps] == [str(s.role) for s in procedure.process]
    received_at = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    due_at = due_date(CALENDAR, procedure, received_at, channel)
    deadlines = process.deadlines(received_at, due_at, CALENDAR)
    assert deadlines[-1] == due_at
    assert deadlines == sorted(deadlines)
    assert process.due_from(received_at, CALENDAR) == due_at  # both services count the same duration
    assert receiving.slug in {t.unit for t in process.transfer_targets}
