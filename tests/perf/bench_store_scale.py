"""Benchmark (not a test): the hot queries of intake and routing on their SQLite stores at 100,000
and 1,000,000 dossiers, and the 1M/100k cost ratio of each (issue 14's goal: <= 1.3).

    .venv/bin/python tests/perf/bench_store_scale.py [--sizes 100000,1000000] [--rounds 5] [--due 100]

The population: a province's dossiers over the catalog (services/intake/catalog: every area, every
unit of every level, every procedure a unit receives), received at ~274 a day (100,000 a year),
newest first. Those of the last four weeks are the live ones, walked through the workflow as far as
their sampled pace got by now: most finished and returned, some at a step claimed by an official,
waiting for the applicant (supplement) or for the result to be collected, a few overdue, 3 %
withdrawn. Growing the collection adds older history, all ended, as a province's store grows: the
work at hand stays the same size while the history grows tenfold.

How it is written (the stores' write path, nothing hand-made):
* live dossiers and a four-week pool before them, one by one: the domain decides (intake's
  ``lifecycle``, routing's ``WorkflowInstance.open`` and ``apply`` of each official's and system's
  command), the repositories' mappers make the documents, and a unit of work on the production
  store commits each with its messages in its outbox (published to an in-memory publisher, then
  removed as production's flush does). A dossier's final state is written once, not once per
  step as the services do (its version differs; its fields are the same);
* the history beyond, in 4-week blocks: each block is the pool's ended dossiers' stored JSON
  shifted back by whole weeks (dates, the code's day; weekdays and hours kept, holidays not
  re-applied) under new ids and codes (not uuid5 of the new request id, as intake's would be),
  inserted with the collection's own INSERT, 2,000 rows per transaction (one by one with an fsync
  each, a million take hours). A sample of every block is checked: the store's schema and encoder
  turn each stamped document back into exactly its text.
Seeding uses synchronous=OFF; every query runs on the stores as production opens them
(``SqliteStore(path)``, synchronous=FULL), through the services' own functions:
* ListTasks of one official (``Officials.list_tasks(official_id=…)``, the default page);
* TrackDossier by code (intake's ``Dossiers.track``), over codes of every age;
* one SLA sweep of an area (``SlaSweep.sweep``) meeting ``--due`` dossiers due soon, opened for it
  through ``Instances.open`` (as bench_routing.py (b)); an untimed sweep first takes whatever else
  is due, as the worker's sweeps every few seconds would have. Its events go to an in-memory
  publisher and form 04 is a stored form's reference: the store's work is measured here, RabbitMQ's
  confirms in bench_routing.py and the form's rendering in bench_forms.py;
* GetStatistics over one month (``StatisticsQuery.indicators``), the month before now, of an area
  and of a unit: its cost follows that month's dossiers, those ended since and the ones open now
  (inherently: it counts them), so a fixed month is the measure, not the history.
Warm cache (each query run once before timing), best of ``--rounds`` (sweeps: median), in CPU
seconds of the calling thread (what the machine's other load disturbs least) and elapsed. Prints the
files' sizes and the seeding rate. 22 minutes for 1,000,000 on the 2-core machine at load 12
(seeding the 15,000 dossiers decided one by one takes most of the first 100k's 9 minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from motcua_dev.testing import MemoryObjects, RecordingPublisher
from motcua_dev.testing import SettableClock as Clock

from intake.adapters.catalog_file import load_catalog
from intake.adapters.records import RECORDS, DossierRecord
from intake.application import events
from intake.application.dossiers import Dossiers
from intake.domain import lifecycle
from intake.domain.catalog import Catalog, Procedure, Unit
from intake.domain.dossier import DocumentRef, Dossier, dossier_code, dossier_id_for
from intake.domain.dossier import Status as IntakeStatus
from intake.domain.process import process_definition
from intake.domain.submission import Limits
from motcua.messaging.outbox import Outbox
from motcua.store import SqliteStore
from motcua.store.sqlite import SqliteCollection, dumps, loads
from motcua.unit_of_work import UnitsOfWork
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.instances import INSTANCES, InstanceRecord
from routing.application.instance_events import messages_of
from routing.application.officials import Officials
from routing.application.repository import Instances
from routing.application.statistics import StatisticsQuery
from routing.application.sweeps import SlaSweep
from routing.domain.actions import (
    INTAKE,
    SIGNING,
    Approve,
    Claim,
    Complete,
    Official,
    RequestSupplement,
    ReturnResult,
    Signed,
    Withdrawn,
)
from routing.domain.instance import FactKind, WorkflowInstance
from routing.domain.kpi766 import Period
from routing.domain.process import ProcessDefinition
from routing.domain.status import Status

CATALOG = Path(__file__).resolve().parents[2] / "services/intake/catalog"
CALENDAR = vietnam_calendar()
NOW = dt.datetime(2027, 3, 15, 10, 0, tzinfo=VN_TZ)  # a Monday morning
PER_DAY = 274  # dossiers received a day in the province (100,000 a year)
LIVE_DAYS = 28  # the live dossiers: received in the last four weeks
POOL_WEEKS = 4  # the pool the history is stamped from: the four weeks before those
BATCH = 2_000  # stamped rows per transaction
MONTH = Period(dt.date(2027, 2, 1), dt.date(2027, 2, 28))  # the statistics' period: the month before now
SWEPT_AREA = "thanh-hoa"  # the province's area (its agencies and the communes without a district)
STATS_AREA = "bim-son"
STATS_UNIT = "phuong-ba-dinh"  # a ward of Bỉm Sơn: what the unit received
PDF_REF = {"media_type": "application/pdf", "size": 48_213, "sha256": "ab" * 32}


class BenchFailed(Exception):
    """A figure could not be measured as planned (a sweep did other work, a count is off)."""


# -- the population ---------------------------------------------------------------------------------


@dataclass
class Desk:
    """Who works in the province: the catalog's units, what each receives, and two officials per
    unit and role (one claims, the other is asked for their list too)."""

    catalog: Catalog
    receivers: list[tuple[Unit, list[Procedure]]]

    @classmethod
    def of(cls, catalog: Catalog) -> Desk:
        procedures = catalog.list_procedures()
        receivers = [(u, [p for p in procedures if catalog.receives(u, p)]) for u in catalog.list_units()]
        return cls(catalog, [(u, ps) for u, ps in receivers if ps])

    @staticmethod
    def official(unit: str, role: str, rng: random.Random) -> Official:
        return Official(f"{role}-{unit}-{rng.randint(1, 2)}", unit, frozenset({role, "approve"}),
                        name=f"Cán bộ {role} {unit}")


@dataclass
class Written:
    """One dossier as both services store it (documents as the repositories' mappers make them)."""

    dossier: Dossier
    instance: WorkflowInstance
    intake_messages: list
    written_at: dt.datetime  # the last write's clock (routing's next_check_at is computed at it)


def receipt_instants(rng: random.Random, per_day: int, days_back_from: int, days: int) -> Iterator[dt.datetime]:
    """``per_day`` receipts a calendar day on average (working days only, 07:30-16:30), newest day first."""
    per_working_day = per_day * 7 / 5
    for back in range(days_back_from, days_back_from + days):
        day = NOW.date() - dt.timedelta(days=back)
        if day.weekday() >= 5:
            continue
        start = dt.datetime.combine(day, dt.time(7, 30), VN_TZ)
        for _ in range(int(per_working_day + rng.random())):
            at = start + dt.timedelta(minutes=rng.uniform(0, 540))
            if at < NOW:
                yield at


class Population:
    """Dossiers decided by the services' domain code, one by one (see the module docstring)."""

    def __init__(self, desk: Desk, seed: int = 14):
        self.desk = desk
        self.rng = random.Random(seed)
        self.sequences: dict[tuple[str, str], int] = {}
        self.count = 0

    def make(self, received: dt.datetime) -> Written:
        rng = self.rng
        unit, procedures = rng.choice(self.desk.receivers)
        procedure = rng.choice(procedures)
        channel = rng.choices(["desk", "online", "post"], [6, 3, 1])[0]
        n = self.count
        self.count += 1
        request_id = f"scale-{n:09d}-request"
        day = f"{received.astimezone(VN_TZ):%y%m%d}"
        sequence = self.sequences[(unit.unit_id, day)] = self.sequences.get((unit.unit_id, day), 0) + 1
        area = self.desk.catalog.area(unit.slug).slug
        dossier = Dossier(
            id=dossier_id_for(request_id), request_id=request_id, fingerprint="f" * 64,
            code=dossier_code(unit.unit_id, received, sequence), procedure_code=procedure.code,
            procedure_version=procedure.version, receiving_unit=unit.slug, area=area, unit_id=unit.unit_id,
            applicant={"full_name": "Nguyễn Thị Hoa", "identity_number": f"038{n:09d}",
                       "phone": f"09{n % 100_000_000:08d}", "email": "", "address": "Phường Ba Đình, Bỉm Sơn",
                       "notify_channels": ["sms"]},
            documents=[DocumentRef(key=f"intake/{n}/{c.code}.pdf", sha256="cd" * 32, size=180_000,
                                   media_type="application/pdf", name=f"{c.code}.pdf", component=c.code)
                       for c in procedure.required_components],
            received_at=None, status=IntakeStatus.SUBMITTED, channel=channel, submitted_at=received)
        lifecycle.record(dossier, "submitted", received, request_id)
        due = lifecycle.due_date(CALENDAR, procedure, received, lifecycle.Channel(channel))
        lifecycle.receive(dossier, at=received, due_at=due, official="Bộ phận Một cửa", request_id="")
        process = process_definition(self.desk.catalog, procedure, unit, online=channel == "online")
        trace = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        messages = [events.dossier_received(dossier, trace, procedure),
                    events.route_dossier(dossier, process, trace, procedure.name),
                    events.render_form(dossier, "01", trace)]
        lifecycle.remember_answer(dossier, request_id, dossier.fingerprint, version=1)
        dossier.receipt = {**PDF_REF, "key": f"intake/{dossier.id}/form-01.pdf"}
        instance = WorkflowInstance.open(
            definition=ProcessDefinition.from_dict(process), dossier_id=dossier.id, code=dossier.code,
            receiving_unit=unit.slug, area=area, procedure_code=procedure.code, received_at=received, due_at=due,
            now=received, calendar=CALENDAR, request_id=f"open:{dossier.id}", channel=channel,
            documents=[vars(d) for d in dossier.documents],
            applicant={k: v for k, v in dossier.applicant.items() if isinstance(v, str)},
            procedure_name=procedure.name)
        lifecycle.mirror_progress(dossier, IntakeStatus.PROCESSING, "processing", received, f"ev-{dossier.id}-4")
        written_at = self._walk(dossier, instance, received, due)
        return Written(dossier, instance, messages, written_at)

    def _walk(self, dossier: Dossier, instance: WorkflowInstance, received: dt.datetime,
              due: dt.datetime) -> dt.datetime:
        """The officials' and systems' commands as far as this dossier's pace got by NOW: the finish
        spread over 20-100 % of the statutory time (one in ten late), actions evenly spaced."""
        rng = self.rng
        span = (due - received) * (rng.uniform(0.2, 1.0) if rng.random() < 0.9 else rng.uniform(1.0, 1.6))
        finish = received + span
        steps = len(instance.steps)
        fate = rng.random()
        last = received
        for k in range(steps + 1):
            at = received + span * (k + 1) / (steps + 1)
            if k == steps:
                at = finish + dt.timedelta(hours=rng.uniform(1, 72))  # collected a little later
            if at > NOW or instance.current is None:
                break
            if fate < 0.03 and k == steps // 2:  # withdrawn at the applicant's request
                instance.apply(Withdrawn(reason="Công dân rút hồ sơ"), by=INTAKE, now=at, request_id=f"w-{dossier.id}")
                lifecycle.withdraw(dossier, at=at, reason="Công dân rút hồ sơ",
                                   identity_number=dossier.applicant["identity_number"], request_id=f"w-{dossier.id}")
                return at
            step = instance.current
            role = step.role.value
            official = self.desk.official(step.unit, role, rng)
            if role == "sign":
                draft = {**PDF_REF, "key": f"routing/{dossier.id}/draft.pdf"}
                instance.apply(Approve(draft=draft), by=official, now=at)
                signing = instance.pending_signing
                result = {**PDF_REF, "key": f"signing/{dossier.id}/result.pdf"}
                instance.apply(Signed(signing_request_id=signing.signing_request_id, signers=(official.name, "UBND"),
                                      result=result), by=SIGNING, now=at)
            elif role == "return":
                if instance.status is not Status.RESULT_READY:
                    break
                instance.apply(ReturnResult(channel="desk", receiver="Nguyễn Thị Hoa"), by=official, now=at)
                lifecycle.mirror_progress(dossier, IntakeStatus.RETURNED, "result returned", at, f"ev-{dossier.id}-10")
            else:
                instance.apply(Claim(), by=official, now=at)
                if 0.03 <= fate < 0.06 and role == "review" and at > NOW - dt.timedelta(days=20):
                    deadline = CALENDAR.add_working_hours(at, dt.timedelta(hours=40))
                    instance.apply(RequestSupplement(reason="Thiếu bản sao giấy khai sinh", deadline=deadline,
                                                     form={**PDF_REF, "key": f"routing/{dossier.id}/form-02.pdf"}),
                                   by=official, now=at)
                    lifecycle.request_supplement(dossier, at=at, reason="Thiếu bản sao giấy khai sinh",
                                                 requested_by=official.id, deadline=deadline,
                                                 event_id=f"ev-{dossier.id}-5")
                    return at
                next_at = received + span * (k + 2) / (steps + 1)
                if next_at > NOW:  # claimed, still at work
                    return at
                instance.apply(Complete(), by=official, now=next_at)
            if instance.status is Status.RESULT_READY and dossier.status is not IntakeStatus.RESULT_READY:
                lifecycle.mirror_progress(dossier, IntakeStatus.RESULT_READY, "result ready", at, f"ev-{dossier.id}-9")
            last = at
        return last


# -- seeding ---------------------------------------------------------------------------------------


@dataclass
class Stores:
    """The two services' stores: as production opens them (queries), and a seeding handle on each."""

    intake: SqliteStore
    routing: SqliteStore
    intake_seed: SqliteStore
    routing_seed: SqliteStore

    @classmethod
    def open(cls, workdir: Path) -> Stores:
        intake, routing = workdir / "intake.sqlite3", workdir / "routing.sqlite3"
        return cls(SqliteStore(intake), SqliteStore(routing), SqliteStore(intake, synchronous="OFF"),
                   SqliteStore(routing, synchronous="OFF"))

    def close(self) -> None:
        for store in (self.intake, self.routing, self.intake_seed, self.routing_seed):
            store.close()

    def size_mb(self) -> dict[str, float]:
        return {name: sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*")) / 1e6
                for name, store in (("intake", self.intake), ("routing", self.routing))}


class Seeder:
    def __init__(self, stores: Stores, desk: Desk, per_day: int = PER_DAY):
        self.stores = stores
        self.per_day = per_day
        self.population = Population(desk)
        self.publisher = RecordingPublisher()
        self.intake_uows = UnitsOfWork(stores.intake_seed, Outbox(self.publisher))
        self.routing_uows = UnitsOfWork(stores.routing_seed, Outbox(self.publisher))
        self.intake_coll = stores.intake_seed.collection(DossierRecord)
        self.routing_coll = stores.routing_seed.collection(InstanceRecord)
        self.pool: list[str] = []  # ids of the pool's dossiers
        self.templates: list[Template] = []
        self.blocks = 0  # history blocks stamped so far
        self.count = 0
        self.codes: list[str] = []  # a sample of codes of every age, for TrackDossier

    def write(self, written: Written) -> None:
        """One dossier through each service's unit of work, as the repositories map it."""
        intake_uow = self.intake_uows.start()
        intake_uow.add(self.intake_coll, RECORDS.dossiers.to_document(written.dossier), written.intake_messages)
        intake_uow.commit()
        routing_uow = self.routing_uows.start()
        instance = written.instance
        routing_uow.add(self.routing_coll, {**INSTANCES.to_document(instance, written.written_at), "revision": 1},
                        messages_of(instance))
        routing_uow.commit()
        self.publisher.published.clear()
        self.count += 1
        if self.count % 31 == 0:
            self.codes.append(written.dossier.code)

    def live_and_pool(self) -> None:
        for at in receipt_instants(self.population.rng, self.per_day, 0, LIVE_DAYS):
            self.write(self.population.make(at))
        for at in receipt_instants(self.population.rng, self.per_day, LIVE_DAYS, POOL_WEEKS * 7):
            written = self.population.make(at)
            self.write(written)
            if written.instance.status.terminal:  # the history is made of ended dossiers only
                self.pool.append(written.dossier.id)

    def history_block(self, limit: int) -> int:
        """The pool shifted back by another POOL_WEEKS weeks, at most ``limit`` dossiers of it."""
        if not self.templates:
            self.templates = [Template.of(self.intake_coll, self.routing_coll, dossier_id) for dossier_id in self.pool]
        self.blocks += 1
        shifted = ShiftedDates(dt.timedelta(weeks=POOL_WEEKS * self.blocks))
        rows: tuple[list, list] = ([], [])
        for i, template in enumerate(self.templates[:limit]):
            stamped = template.stamp(self.blocks, shifted)
            if i % 1000 == 0:  # the store's own validation and encoding give back the same text
                for coll, (_, _, text) in zip((self.intake_coll, self.routing_coll), stamped, strict=True):
                    doc = loads(text)
                    if dumps(coll.schema.prepare(doc, version=doc["version"])) != text:
                        raise BenchFailed(f"{coll.name}: a stamped document is not what the store writes for it")
            rows[0].append(stamped[0])
            rows[1].append(stamped[1])
            if i % 31 == 0:
                self.codes.append(template.code_in(self.blocks, shifted))
            if len(rows[0]) >= BATCH:
                self._insert(rows)
        self._insert(rows)
        done = min(limit, len(self.templates))
        self.count += done
        return done

    def _insert(self, rows: tuple[list, list]) -> None:
        for batch, coll, store in zip(rows, (self.intake_coll, self.routing_coll),
                                      (self.stores.intake_seed, self.stores.routing_seed), strict=True):
            with store._write() as conn:
                conn.execute("PRAGMA cache_size=-262144")  # seeding only: 256 MB for 22 indexes growing at once
                conn.executemany(f"INSERT INTO {coll.name} (_id, version, doc) VALUES (?, ?, ?)", batch)
            batch.clear()

    def fill_to(self, size: int) -> None:
        if not self.pool:
            self.live_and_pool()
        while self.count < size:
            self.history_block(size - self.count)


class ShiftedDates(dict):
    """ISO date text → the date ``shift`` earlier (whole weeks: weekday and time of day stay)."""

    def __init__(self, shift: dt.timedelta):
        super().__init__()
        self.shift = shift

    def __missing__(self, day: str) -> str:
        new = self[day] = (dt.date.fromisoformat(day) - self.shift).isoformat()
        return new


_ID, _CODE, _REQUEST = "\x00id\x00", "\x00code\x00", "\x00request\x00"
_DATE = re.compile(r"(?<![\w.-])\d{4}-\d\d-\d\d(?![\d-])")  # ISO dates, alone or in an instant
_PARTS = re.compile(f"({_ID}|{_CODE}|{_REQUEST}|{_DATE.pattern})")


@dataclass
class Template:
    """A pool dossier's stored rows (intake's, routing's) cut where a date, its id, its code or its
    request id stands, to be stamped as an older dossier: every date moved back, new ids and code."""

    dossier_id: str
    code: str
    request_id: str
    versions: tuple[int, int]
    parts: tuple[list[str], list[str]]

    @classmethod
    def of(cls, intake: SqliteCollection, routing: SqliteCollection, dossier_id: str) -> Template:
        rows = []
        for coll in (intake, routing):
            with coll._store._pool.connection() as conn:
                rows.append(conn.execute(f"SELECT version, doc FROM {coll.name} WHERE _id = ?",
                                         (dossier_id,)).fetchone())
        doc = loads(rows[0][1])
        code, request_id = doc["code"], doc["request_id"]
        parts = tuple(_PARTS.split(text.replace(dossier_id, _ID).replace(code, _CODE).replace(request_id, _REQUEST))
                      for _, text in rows)
        return cls(dossier_id, code, request_id, (rows[0][0], rows[1][0]), parts)

    def code_in(self, block: int, dates: ShiftedDates) -> str:
        """``<unit id>-YYMMDD-NNNN`` on the shifted day."""
        unit_id, day, sequence = self.code.rsplit("-", 2)
        shifted = dates[f"20{day[:2]}-{day[2:4]}-{day[4:]}"]
        return f"{unit_id}-{shifted[2:4]}{shifted[5:7]}{shifted[8:]}-{sequence}"

    def stamp(self, block: int, dates: ShiftedDates) -> tuple[tuple[str, int, str], tuple[str, int, str]]:
        new_id = f"{self.dossier_id[:-6]}{block:06d}"
        tokens = {_ID: new_id, _CODE: self.code_in(block, dates), _REQUEST: f"{self.request_id}-{block:04d}"}
        out = []
        for version, parts in zip(self.versions, self.parts, strict=True):
            text = parts[:]
            for i in range(1, len(text), 2):
                text[i] = tokens.get(text[i]) or dates[text[i]]
            out.append((new_id, version, "".join(text)))
        return out[0], out[1]


# -- the queries ------------------------------------------------------------------------------------


@dataclass
class Services:
    """The services' own query functions over the stores as production opens them."""

    officials: Officials
    dossiers: Dossiers
    statistics: StatisticsQuery
    sweep: SlaSweep
    instances: Instances
    clock: Clock
    catalog: Catalog

    def unit_id(self, slug: str) -> str:
        return self.catalog.unit(slug).unit_id

    @classmethod
    def on(cls, stores: Stores, desk: Desk) -> Services:
        clock = Clock(NOW)
        publisher = RecordingPublisher()
        instances = Instances(UnitsOfWork(stores.routing, Outbox(publisher)), CALENDAR, clock, records=INSTANCES)
        dossiers = Dossiers(UnitsOfWork(stores.intake, Outbox(publisher)), MemoryObjects(), desk.catalog,
                            Limits(max_document_bytes=50_000_000, max_documents=30), RECORDS, clock=clock,
                            calendar=CALENDAR)
        # form 04's reference (rendering is bench_forms.py's): the sweep's store work is measured
        apology = lambda instance, due, reason, now: {**PDF_REF, "key": f"routing/{instance.dossier_id}/form-04.pdf"}  # noqa: E731
        sweep = SlaSweep(instances, apology, lease=dt.timedelta(minutes=2), batch=100_000)
        return cls(Officials(instances), dossiers, StatisticsQuery(instances.collection, clock), sweep, instances,
                   clock, desk.catalog)


def busiest_official(stores: Stores) -> str:
    """The official with the most tasks claimed (their list is the longest to page)."""
    with stores.routing._pool.connection() as conn:
        who = 'json_extract(doc, \'$."claimed_by"\')'  # the (claimed_by, …) index's expression
        row = conn.execute(f"SELECT {who}, count(*) AS n FROM workflow_instances WHERE {who} IS NOT NULL "
                           f"GROUP BY {who} ORDER BY n DESC LIMIT 1").fetchone()
    return row[0]


@dataclass(frozen=True)
class Timing:
    """Seconds per call: elapsed, and CPU of this thread (the figure other processes' load on the
    machine disturbs least: the queries run in this thread, their data in the page cache)."""

    wall: float
    cpu: float


def best_of(rounds: int, run: Callable[[], object], repeat: int = 1) -> Timing:
    """The best of ``rounds`` runs of ``repeat`` calls (after one untimed call), per call."""
    run()
    walls, cpus = [], []
    for _ in range(rounds):
        started, cpu = time.perf_counter(), time.thread_time()
        for _ in range(repeat):
            run()
        walls.append((time.perf_counter() - started) / repeat)
        cpus.append((time.thread_time() - cpu) / repeat)
    return Timing(min(walls), min(cpus))


@dataclass
class Figures:
    size: int
    seconds: dict[str, Timing] = field(default_factory=dict)  # query → per call
    notes: dict[str, str] = field(default_factory=dict)


def measure(services: Services, seeder: Seeder, size: int, args: argparse.Namespace, official: str,
            turns: Iterator[dt.datetime]) -> Figures:
    figures = Figures(size)
    tasks = services.officials.list_tasks(official_id=official)
    figures.notes["tasks"] = f"{official}: {len(tasks.tasks)} tasks on the page"
    figures.seconds["ListTasks (one official)"] = best_of(
        args.rounds, lambda: services.officials.list_tasks(official_id=official), repeat=20)
    codes = random.Random(size).sample(seeder.codes, min(200, len(seeder.codes)))
    for code in codes[:3]:
        services.dossiers.track(code)
    track = iter(codes * 1000)
    figures.seconds["TrackDossier (by code)"] = best_of(args.rounds, lambda: services.dossiers.track(next(track)),
                                                        repeat=200)
    stats = services.statistics.indicators(area=STATS_AREA, period=MONTH)
    received = sum(n for kpi, n in stats.counts.items() if kpi.name.startswith("RECEIVED"))
    figures.notes["stats"] = f"{STATS_AREA} received {received:,} in {MONTH.start:%m/%Y}"
    figures.seconds[f"GetStatistics (area {STATS_AREA}, month)"] = best_of(
        args.rounds, lambda: services.statistics.indicators(area=STATS_AREA, period=MONTH), repeat=5)
    figures.seconds[f"GetStatistics (unit {STATS_UNIT}, month)"] = best_of(
        args.rounds, lambda: services.statistics.indicators(unit=STATS_UNIT, period=MONTH), repeat=5)
    sweeps = [timed_sweep(services, args.due, next(turns)) for _ in range(args.rounds)]
    figures.seconds[f"SLA sweep ({SWEPT_AREA}, {args.due} due)"] = Timing(
        statistics.median(s.wall for s in sweeps), statistics.median(s.cpu for s in sweeps))
    open_now = services.instances.collection.count({"area": SWEPT_AREA,
                                                    "open_state": {"$in": ["in_process", "paused"]}})
    figures.notes["sweep"] = f"{open_now:,} open dossiers in {SWEPT_AREA}"
    return figures


def sweep_turns() -> Iterator[dt.datetime]:
    """Receipt instants of the sweeps' fresh due sets, 257 working minutes apart from now on: more
    than the 4 working hours after which a set comes due soon (the clock only moves forward), and
    no multiple of it lands on a later deadline of an earlier set (which would then be due too)."""
    k = 0
    while True:
        yield CALENDAR.add_working_hours(NOW, dt.timedelta(minutes=257 * k))
        k += 1


# A province agency's three-step procedure of three working days: the desk's step is due soon
# four working hours after receipt (bench_routing.py's due sets, in the province's area).
DUE_UNIT = "van-phong-dang-ky-dat-dai"
DUE_PROCESS = {"steps": [{"role": role, "unit": DUE_UNIT, "level": "province", "share": share}
                         for role, share in (("receive", 0.5), ("review", 0.3), ("return", 0.2))],
               "time_type": "working_days", "duration_hours": 24, "supplement_policy": "pause"}


def timed_sweep(services: Services, due: int, received: dt.datetime) -> Timing:
    """``due`` dossiers opened (``Instances.open``) at ``received``, whose first step comes due soon
    at the same instant; an untimed sweep takes what else is due until a second before; then the
    timed sweep at that instant must meet exactly them."""
    services.clock.now = received
    unit_id = services.unit_id(DUE_UNIT)
    definition = {**DUE_PROCESS, "steps": [{**s, "unit_id": unit_id} for s in DUE_PROCESS["steps"]]}
    due_at = ProcessDefinition.from_dict(definition).due_from(received, CALENDAR)
    opened = [services.instances.open(
        {"dossier_id": f"due-{received:%y%m%d%H%M}-{i}", "code": f"{unit_id}-{received:%y%m%d%H%M}-{i:04d}",
         "receiving_unit": DUE_UNIT, "area": SWEPT_AREA, "procedure_code": "1.004227",
         "received_at": received.isoformat(), "due_at": due_at.isoformat(), "process": definition})
        for i in range(due)]
    turn = opened[0].doc["next_check_at"]
    services.clock.now = turn - dt.timedelta(seconds=1)
    while services.sweep.sweep([SWEPT_AREA]).claimed:
        pass
    services.clock.now = turn
    waiting = services.instances.collection.count({"area": SWEPT_AREA, "next_check_at": {"$lte": turn}})
    if waiting != due:
        raise BenchFailed(f"{waiting} dossiers due at the sweep, not {due}")
    started, cpu = time.perf_counter(), time.thread_time()
    report = services.sweep.sweep([SWEPT_AREA])
    seconds = Timing(time.perf_counter() - started, time.thread_time() - cpu)
    if (report.claimed, report.written, report.facts) != (due, due, {FactKind.DUE_SOON.value: due}):
        raise BenchFailed(f"the sweep did other work than {due} due-soon dossiers: {report}")
    return seconds


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="dossiers in the stores, ascending")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--due", type=int, default=100, help="dossiers due at each timed sweep")
    parser.add_argument("--per-day", type=int, default=PER_DAY,
                        help="dossiers received a day (fewer: a quicker, smaller live set)")
    parser.add_argument("--keep", type=Path, help="seed into this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    desk = Desk.of(load_catalog(CATALOG))
    results: list[Figures] = []
    seeding: list[tuple[int, float]] = []
    sizes_mb: list[dict[str, float]] = []
    turns = sweep_turns()
    official = ""
    with tempfile.TemporaryDirectory(prefix="motcua-bench-scale-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        stores = Stores.open(workdir)
        try:
            seeder = Seeder(stores, desk, args.per_day)
            services = Services.on(stores, desk)
            for size in sizes:
                before, seed_started = seeder.count, time.perf_counter()
                seeder.fill_to(size)
                seeding.append((seeder.count - before, time.perf_counter() - seed_started))
                print(f"seeded {seeder.count:,} dossiers ({seeding[-1][1]:.0f} s)", flush=True)
                official = official or busiest_official(stores)  # the same one at every size
                results.append(measure(services, seeder, size, args, official, turns))
                sizes_mb.append(stores.size_mb())
        except BenchFailed as failed:
            print(failed, file=sys.stderr)
            return 1
        finally:
            stores.close()
    report(results, seeding, sizes_mb, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


def report(results: list[Figures], seeding: list[tuple[int, float]], sizes_mb: list[dict[str, float]],
           args: argparse.Namespace) -> None:
    small, large = results[0], results[-1]
    print(f"\nHot queries on the SQLite stores as production opens them (synchronous=FULL), warm cache, "
          f"best of {args.rounds} (sweep: median)")
    for figures, (added, seconds), mb in zip(results, seeding, sizes_mb, strict=True):
        print(f"    {figures.size:>9,} dossiers: intake {mb['intake']:,.0f} MB, routing {mb['routing']:,.0f} MB; "
              f"seeded {added:,} at {added / seconds:,.0f} dossiers/s; {'; '.join(figures.notes.values())}")
    ratio = f"{large.size:,}/{small.size:,}"
    print(f"    ms per call, CPU (this thread) and elapsed; the ratio {ratio} of each (goal <= 1.3)")
    print(f"    {'query':<42} | {'CPU ms':>9} {'':>9} {'ratio':>6} | {'elapsed ms':>10} {'':>9} {'ratio':>6}")
    print(f"    {'':<42} | {f'{small.size:,}':>9} {f'{large.size:,}':>9} {'':>6} | {f'{small.size:,}':>10} "
          f"{f'{large.size:,}':>9} {'':>6}")
    for name in small.seconds:
        a, b = small.seconds[name], large.seconds[name]
        print(f"    {name:<42} | {a.cpu * 1000:>9.3f} {b.cpu * 1000:>9.3f} {b.cpu / a.cpu:>6.2f} | "
              f"{a.wall * 1000:>10.3f} {b.wall * 1000:>9.3f} {b.wall / a.wall:>6.2f}")


if __name__ == "__main__":
    sys.exit(main())
