"""GetStatistics' index-range counts checked against the domain's own classification.

A generated population of dossiers (every channel and status, receipts and endings close to local
midnight, due dates on the day they end) is stored as routing stores instances; the expected
numbers are :func:`routing.domain.kpi766.count` over the same snapshots, which classifies each
dossier one by one. 20,000 dossiers on SQLite under `make test` (``MOTCUA_STATS_POPULATION=100000``
for the full-size check; `make bench`'s bench_statistics checks the counts at 100,000 too), 3,000 on
each backend. The statistics read only
the indexed columns, so the generated documents carry a placeholder instance; a real instance's
document is checked on its own.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from motcua_dev.testing import recorded_queries

from motcua.errors import InvalidArgument
from motcua.store import SqliteStore, Store
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.instances import InstanceRecord, indicator_fields, to_document
from routing.application.statistics import StatisticsQuery
from routing.domain.instance import WorkflowInstance
from routing.domain.kpi766 import Channel, DossierSnapshot, Kpi, Period, count, rates
from routing.domain.process import ProcessDefinition
from routing.domain.status import Status

pytestmark = pytest.mark.integration

CALENDAR = vietnam_calendar()
NOW = dt.datetime(2027, 3, 15, 10, 0, tzinfo=VN_TZ)
FIRST = dt.datetime(2026, 10, 1, tzinfo=VN_TZ)
AREAS = {"bim-son": "bim-son", "phuong-ba-dinh": "bim-son", "ba-thuoc": "ba-thuoc", "xa-dien-quang": "ba-thuoc"}
PROCEDURES = ("1.001776", "2.000908", "1.004227")
OPEN = (Status.PROCESSING, Status.SUPPLEMENT_REQUESTED, Status.PAYMENT_REQUESTED)
ENDED = (Status.RESULT_READY, Status.RETURNED, Status.STOPPED, Status.WITHDRAWN)
PROCESS = {"steps": [{"role": role, "unit": "bim-son", "unit_id": "000.00.06.H56", "level": "district",
                      "share": 0.5} for role in ("receive", "return")],
           "time_type": "working_days", "duration_hours": 24, "supplement_policy": "pause"}
PERIODS = {
    "past month": Period(dt.date(2027, 2, 1), dt.date(2027, 2, 28)),
    "running month": Period(dt.date(2027, 3, 1), dt.date(2027, 3, 31)),
    "one day": Period(dt.date(2027, 3, 1), dt.date(2027, 3, 1)),
    "today": Period(dt.date(2027, 3, 15), dt.date(2027, 3, 15)),
    "last quarter": Period(dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
    "everything": Period(dt.date(2026, 1, 1), dt.date(2027, 12, 31)),
    "before any dossier": Period(dt.date(2026, 1, 1), dt.date(2026, 9, 30)),
    "future": Period(dt.date(2027, 4, 1), dt.date(2027, 4, 30)),
}


@dataclass(frozen=True)
class Generated:
    unit: str
    procedure_code: str
    snapshot: DossierSnapshot


def instant(rng: random.Random, low: dt.datetime, high: dt.datetime) -> dt.datetime:
    """Uniform in [low, high], or (one time in four) within two minutes of a local midnight in it."""
    if rng.random() < 0.25:
        day = low.astimezone(VN_TZ).date() + dt.timedelta(days=rng.randint(0, (high - low).days + 1))
        t = dt.datetime.combine(day, dt.time(), VN_TZ) + dt.timedelta(seconds=rng.randint(-120, 120))
        if low <= t <= high:
            return t
    return low + (high - low) * rng.random()


def generated(n: int, seed: int, since: dt.datetime = FIRST, until: dt.datetime = NOW) -> list[Generated]:
    """``n`` dossiers received between ``since`` and ``until``; those received more than 90 days
    before now have all ended (as a province's history would)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        received = instant(rng, since, until)
        due = received + dt.timedelta(days=rng.choice((0, 0, 1, 3, 7, 15, 30)), hours=rng.randint(0, 9))
        status = rng.choice(OPEN + ENDED if received > NOW - dt.timedelta(days=90) else ENDED)
        finished = returned = None
        if status in ENDED:
            finished = instant(rng, received, min(received + dt.timedelta(days=40), NOW))
            if rng.random() < 0.2:  # ends on its due date, at any hour of it
                finished = max(received, min(NOW, due.replace(hour=rng.randint(0, 23))))
        if status is Status.RETURNED:
            returned = instant(rng, finished, NOW)
        out.append(Generated(rng.choice(list(AREAS)), rng.choice(PROCEDURES), DossierSnapshot(
            channel=rng.choice(list(Channel)), received_at=received, due_at=due, status=status,
            finished_at=finished, returned_at=returned, paused=status in OPEN[1:])))
    return out


def template() -> dict:
    definition = ProcessDefinition.from_dict(PROCESS)
    received = dt.datetime(2027, 3, 1, 9, tzinfo=VN_TZ)
    instance = WorkflowInstance.open(definition=definition, dossier_id="template", code="template",
                                     receiving_unit="bim-son", area="bim-son", procedure_code=PROCEDURES[0],
                                     received_at=received,
                                     due_at=definition.due_from(received, CALENDAR), now=received, calendar=CALENDAR)
    return {**to_document(instance, received), "revision": 1}


def store_all(store: Store, population: list[Generated], first_id: int = 0) -> StatisticsQuery:
    collection = store.collection(InstanceRecord)
    base = {**template(), "instance": {"generated": True}}  # the counts never read it
    for i, g in enumerate(population, start=first_id):
        collection.insert({**base, "_id": f"d{i}", "code": f"code-{i}", "receiving_unit": g.unit, "area": AREAS[g.unit],
                           "procedure_code": g.procedure_code, "status": int(g.snapshot.status),
                           **indicator_fields(g.snapshot)})
    return StatisticsQuery(collection, lambda: NOW)


def expected(population: list[Generated], period: Period, unit: str = "", area: str = "",
             procedure_code: str = "") -> Counter[Kpi]:
    chosen = [g.snapshot for g in population
              if (not unit or g.unit == unit) and (not area or AREAS[g.unit] == area)
              and (not procedure_code or g.procedure_code == procedure_code)]
    return count(chosen, period, today=NOW.date())


def assert_matches(query: StatisticsQuery, population: list[Generated], period: Period, **scope: str) -> None:
    stats = query.indicators(period=period, **scope)
    want = expected(population, period, **scope)
    assert stats.counts == {k: want.get(k, 0) for k in Kpi}
    assert stats.percentages == {k: v for k, v in rates(want).items() if v is not None}


@pytest.fixture(scope="module")
def population_stored(tmp_path_factory) -> Iterator[tuple[StatisticsQuery, list[Generated]]]:
    # Storing costs ~0.7 ms a dossier (schema validation, SQLite), so 100,000 took over a minute of
    # every `make test`; what is checked — index-range counts equal the one-by-one classification —
    # does not depend on the size, which the benchmark covers.
    population = generated(int(os.environ.get("MOTCUA_STATS_POPULATION", "20000")), seed=766)
    # synchronous=OFF only to generate quickly: the queries are what is under test
    store = SqliteStore(tmp_path_factory.mktemp("stats") / "routing.sqlite3", synchronous="OFF")
    yield store_all(store, population), population
    store.close()


@pytest.mark.parametrize("period", PERIODS.values(), ids=PERIODS.keys())
def test_a_generated_population_counted_by_unit_and_by_area(population_stored, period: Period):
    query, population = population_stored
    assert_matches(query, population, period, unit="phuong-ba-dinh")
    assert_matches(query, population, period, area="bim-son")
    assert_matches(query, population, period, area="ba-thuoc", procedure_code="2.000908")


def test_the_generated_population_reaches_every_indicator(population_stored):
    _, population = population_stored
    counts = expected(population, PERIODS["past month"], area="bim-son") \
        + expected(population, PERIODS["running month"], area="bim-son")
    assert all(counts[k] > 0 for k in Kpi), counts


def test_both_backends_agree_with_the_classification(store: Store):
    population = generated(3_000, seed=1)
    query = store_all(store, population)
    for period in PERIODS.values():
        assert_matches(query, population, period, unit="bim-son")
        assert_matches(query, population, period, area="ba-thuoc")
        assert_matches(query, population, period, area="bim-son", procedure_code="1.004227")


def test_a_real_instance_counts_as_its_snapshot(store: Store):
    """The document routing writes for an instance carries the columns the counts read."""
    collection = store.collection(InstanceRecord)
    collection.insert(template())
    query = StatisticsQuery(collection, lambda: NOW)
    stats = query.indicators(unit="bim-son", period=PERIODS["running month"])
    assert {k: v for k, v in stats.counts.items() if v} == {Kpi.RECEIVED_DESK: 1, Kpi.IN_PROCESS_OVERDUE: 1}
    assert stats.percentages == {"received_online": 0.0, "in_process_overdue": 100.0}


@pytest.mark.parametrize(("scope", "field"), [
    ({}, "unit"), ({"unit": "bim-son", "area": "bim-son"}, "unit"), ({"unit": "  "}, "unit")])
def test_the_scope_is_one_unit_or_one_district(store: Store, scope: dict, field: str):
    query = StatisticsQuery(store.collection(InstanceRecord), lambda: NOW)
    with pytest.raises(InvalidArgument) as caught:
        query.indicators(period=PERIODS["today"], **scope)
    assert caught.value.field == field


def test_a_period_without_an_end_runs_to_today(store: Store):
    query = StatisticsQuery(store.collection(InstanceRecord), lambda: NOW)
    assert query.period(dt.datetime(2027, 2, 28, 17, 30, tzinfo=dt.UTC)) == Period(dt.date(2027, 3, 1), NOW.date())
    with pytest.raises(InvalidArgument):
        query.period(NOW, NOW - dt.timedelta(days=2))


# -- the operators' gauges: dossiers at work by status, overdue by area ---------------------------


def at_work_expected(population: list[Generated], area: str) -> tuple[Counter[Status], Counter[str]]:
    """One by one: the non-terminal statuses, and the open dossiers whose due date is behind today."""
    mine = [g.snapshot for g in population if AREAS[g.unit] == area]
    by_status = Counter(s.status for s in mine if not s.status.terminal)
    today = count(mine, PERIODS["today"], today=NOW.date())
    return by_status, Counter({"in_process": today[Kpi.IN_PROCESS_OVERDUE], "paused": today[Kpi.PAUSED_OVERDUE]})


def test_dossiers_at_work_by_status_and_overdue_by_area(store: Store):
    population = generated(3_000, seed=13)
    query = store_all(store, population)
    for area in ("bim-son", "ba-thuoc"):
        by_status, overdue = at_work_expected(population, area)
        at_work = query.at_work(area)
        assert at_work.by_status == {s: by_status[s] for s in Status if not s.terminal}
        assert at_work.overdue == dict(overdue)
        assert all(at_work.by_status.values()) and all(at_work.overdue.values()), "the population reaches each"
    assert query.at_work("tho-xuan").by_status == dict.fromkeys(at_work.by_status, 0)


def test_dossiers_at_work_are_counted_on_indexes_only(sqlite_store):
    """The gauges run every minute on every area: each count seeks an index, none scans the table."""
    query = store_all(sqlite_store, generated(200, seed=2))
    collection = sqlite_store.collection(InstanceRecord)
    with recorded_queries(collection) as asked:
        query.at_work("bim-son")
    assert len(asked) >= 4 + 3  # one per status at work; open in process, ended later, paused
    for f, _, _ in asked:
        plan = collection.query_plan(f)
        # the seek narrows past the area (on its own, the area's whole history would be read)
        assert "SCAN" not in plan and plan.count("<expr>") >= 2, (f, plan)
        if set(f) == {"area", "status"}:
            assert "USING INDEX ix_workflow_instances__area__status " in plan, plan


@pytest.mark.parametrize("scope", [{"area": "bim-son"}, {"unit": "phuong-ba-dinh"},
                                   {"area": "ba-thuoc", "procedure_code": "2.000908"},
                                   {"unit": "bim-son", "procedure_code": "1.001776"}], ids=str)
@pytest.mark.parametrize("period", ["running month", "past month", "last quarter"])
def test_statistics_read_the_period_and_the_open_dossiers_never_the_history(sqlite_store, scope, period):
    """Every count of GetStatistics seeks an index past the scope, and no range reaches back to the
    scope's first dossier: a count of those "received before the period" on the (receiving_unit,
    received_at) index would read a unit's whole history (bench_store_scale.py measures it at 1M)."""
    query = store_all(sqlite_store, generated(200, seed=3))
    collection = sqlite_store.collection(InstanceRecord)
    with recorded_queries(collection) as asked:
        query.indicators(period=PERIODS[period], **scope)
    assert len(asked) >= 17
    for f, _, _ in asked:
        plan = collection.query_plan(f)
        assert "SCAN" not in plan and plan.count("<expr>") >= 2, (f, plan)
        assert "procedure_code__receiving_unit" not in plan, (f, plan)  # every dossier of the procedure
        # the (scope, received_at) index only from a lower bound on: the period's arrivals, not the past
        assert "__received_at (<expr>=? AND <expr><?)" not in plan, (f, plan)


def test_a_worker_round_sets_the_gauges_of_its_areas(sqlite_store):
    """What the routing worker's `dossier_gauges` timer does, read back from the Prometheus registry."""
    from prometheus_client import REGISTRY

    from routing.adapters.gauges import count_at_work

    population = generated(500, seed=5)
    count_at_work(store_all(sqlite_store, population), ["bim-son", "tho-xuan"])
    by_status, overdue = at_work_expected(population, "bim-son")
    for status in Status:
        if not status.terminal:
            value = REGISTRY.get_sample_value("motcua_dossiers", {"area": "bim-son", "status": status.name.lower()})
            assert value == by_status[status], status
            assert REGISTRY.get_sample_value(
                "motcua_dossiers", {"area": "tho-xuan", "status": status.name.lower()}) == 0
    for state, n in overdue.items():
        assert REGISTRY.get_sample_value("motcua_dossiers_overdue", {"area": "bim-son", "state": state}) == n
    assert REGISTRY.get_sample_value("motcua_dossiers", {"area": "ba-thuoc", "status": "processing"}) is None
