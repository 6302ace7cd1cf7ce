"""Routing's hot queries stay on their indexes (SQLite's EXPLAIN QUERY PLAN), whatever the store
holds: an official's and a unit's task lists, the SLA sweep's claim and a dossier by its code. Their
cost must follow what they return, not the collection: tests/perf/bench_store_scale.py measures them
at 100,000 and 1,000,000 dossiers; here a plan that scans, or seeks an index that does not narrow
to them, fails. (The statistics' counts: test_statistics.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
from motcua_dev.testing import RecordingPublisher, recorded_queries
from motcua_dev.testing import SettableClock as Clock

from motcua.messaging.outbox import Outbox
from motcua.unit_of_work import UnitsOfWork
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.instances import INSTANCES
from routing.application.officials import Officials, TaskFilter
from routing.application.repository import Instances
from routing.application.sweeps import SlaSweep
from routing.domain.actions import Official
from routing.domain.process import ProcessDefinition

pytestmark = pytest.mark.integration

CALENDAR = vietnam_calendar()
NOW = dt.datetime(2027, 3, 15, 9, 0, tzinfo=VN_TZ)
UNIT, UNIT_ID = "bim-son", "000.00.06.H56"
DESK = Official("mc-bim-son", UNIT, frozenset({"receive", "return"}))
PROCESS = {"steps": [{"role": role, "unit": UNIT, "unit_id": UNIT_ID, "level": "district", "share": share}
                     for role, share in (("receive", 0.5), ("review", 0.3), ("return", 0.2))],
           "time_type": "working_days", "duration_hours": 24, "supplement_policy": "pause"}


@pytest.fixture
def officials(sqlite_store) -> Officials:
    """Three dossiers at the desk of Bỉm Sơn, two of them claimed by the desk's official."""
    instances = Instances(UnitsOfWork(sqlite_store, Outbox(RecordingPublisher())), CALENDAR, Clock(NOW),
                          records=INSTANCES)
    officials = Officials(instances)
    due_at = ProcessDefinition.from_dict(PROCESS).due_from(NOW, CALENDAR)
    for n in range(3):
        opened = officials.open({"dossier_id": f"d{n}", "code": f"{UNIT_ID}-270315-{n:04d}", "receiving_unit": UNIT,
                                 "area": UNIT, "procedure_code": "1.004616", "received_at": NOW.isoformat(),
                                 "due_at": due_at.isoformat(), "process": PROCESS})
        if n:
            officials.act(f"claim-{n}", opened.instance.code, DESK, "claim", expected_version=opened.version)
    return officials


def plans(collection, asked) -> list[str]:
    return [collection.query_plan(f, s, limit) for f, s, limit in asked]


@pytest.mark.parametrize("task_filter", list(TaskFilter))
@pytest.mark.parametrize("procedure_code", ["", "1.004616"])
def test_an_official_s_and_a_unit_s_tasks_seek_their_own_index(officials, task_filter, procedure_code):
    collection = officials._instances.collection
    first = officials.list_tasks(official_id=DESK.id, page_size=1)
    assert first.next_page_token  # two claimed: the second page is asked too
    with recorded_queries(collection) as asked:
        officials.list_tasks(official_id=DESK.id, filter=task_filter, procedure_code=procedure_code)
        officials.list_tasks(official_id=DESK.id, filter=task_filter, procedure_code=procedure_code,
                             page_size=1, page_token=first.next_page_token)
    with recorded_queries(collection) as asked_unit:
        officials.list_tasks(unit=UNIT, filter=task_filter, procedure_code=procedure_code)
    for plan in plans(collection, asked):
        # the official's claimed steps only: claimed_by is cleared when the dossier closes
        assert "SEARCH workflow_instances USING INDEX ix_workflow_instances__claimed_by__step_deadline (<expr>=?" \
            in plan, plan
        assert "SCAN" not in plan and "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    for plan in plans(collection, asked_unit):
        assert "USING INDEX ix_workflow_instances__current_unit__" in plan, plan
        assert "SCAN" not in plan and "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_the_sweep_claims_through_the_area_s_next_check(officials):
    instances = officials._instances
    sweep = SlaSweep(instances, lambda *_: {}, lease=dt.timedelta(minutes=2))
    with recorded_queries(instances.collection) as asked:
        sweep.sweep([UNIT])
    assert asked
    for plan in plans(instances.collection, asked):
        # only what is due now: next_check_at is None once nothing can come due
        assert plan == ("SEARCH workflow_instances USING INDEX ix_workflow_instances__area__next_check_at "
                        "(<expr>=? AND <expr><?)"), plan


def test_a_dossier_is_found_by_its_code_through_the_unique_index(officials):
    collection = officials._instances.collection
    with recorded_queries(collection) as asked:
        officials.timeline(code=f"{UNIT_ID}-270315-0001")
    assert plans(collection, asked) == ["SEARCH workflow_instances USING INDEX ux_workflow_instances__code (<expr>=?)"]
