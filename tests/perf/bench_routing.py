"""Benchmark (not a test): routing's api process alone beside a bare grpcio echo server measured
in the same run, and the SLA sweep as the collection grows. Prints figures and ratios; asserts
nothing about time.

    .venv/bin/python tests/perf/bench_routing.py [--clients 8,32] [--seconds 5] [--processes 4]
                                                 [--dossiers 3000] [--sizes 10000,100000] [--due 200]
                                                 [--rounds 3] [--empty-repeats 100]
                                                 [--api-processes 1,CPUS] [--no-sweeps]

Starts only what it measures: the routing api process as the platform starts it (``api_spec``),
on a fresh SQLite store in a temporary directory, a private RabbitMQ vhost and a fresh bucket of
SeaweedFS (a private one unless a ``make run`` S3 answers); the running RabbitMQ must answer.

(a) RoutingService.Act at each concurrency of ``--clients``: stock grpcio clients (generated
    stubs), one channel per client, spread over ``--processes`` spawned client processes. Each
    client is an official of the receiving desk working through ``--dossiers`` / clients dossiers
    of its own, opened beforehand by this process on the api's very SQLite file (``Instances.open``,
    events published on the same vhost): claim, then complete the first step, each call naming the
    expected_version the previous answer gave. calls/s, p50 and p99 over a ``--seconds`` window,
    for each count of api server processes in ``--api-processes`` (MOTCUA_API_PROCESSES), beside
    - the RAW baseline (``raw_server.py``, as many processes on one port): a bare grpcio server
      doing per call one fsynced SQLite insert (WAL, synchronous=FULL, one file) and one publish
      waited for its confirm (kombu); no S3 PUT, as a claim or a completion puts nothing there —
      the goals (issue 14): Act/raw calls/s >= 0.5, p99 <= 3 x raw p99;
    - the echo server receiving a serialized ActRequest at the same concurrency (the second figure);
    what one Act made the api do (its /metrics), and the CPU each process used in the window.
(b) SlaSweep.sweep in this process (no gRPC) over one district holding each of ``--sizes`` open
    dossiers, ``--due`` of them due (their first step is due soon: a ``dossier.due_soon`` alert,
    published with confirms; none is overdue, so no form 04 is rendered) and the rest not due for
    weeks; each of ``--rounds`` sweeps meets a fresh due set, and a sweep with nothing due is
    timed too. The sweep is index-bound on (area, next_check_at): the 100k/10k ratios should
    stay near 1. Seeding uses synchronous=OFF; the sweeps run on the store as production opens it
    (synchronous=FULL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from motcua_dev import infra
from motcua_dev.devstack import Stack
from motcua_dev.harness import private_vhost
from motcua_dev.platform import api_spec, metrics_urls, scrape
from motcua_dev.testing import FakeSealer, drop_bucket, ensure_amqp_uri, seaweedfs_for_tests
from motcua_dev.testing import SettableClock as Clock
from perfkit import (
    API_GOALS,
    LoadResult,
    call_costs,
    echo_server,
    find_pid,
    measure_clients,
    print_vs_baselines,
    raw_server,
)

from motcua.api_processes import usable_cpus
from motcua.messaging.outbox import Outbox
from motcua.messaging.publisher import Publisher
from motcua.objects import ObjectStore
from motcua.routing.v1 import routing_pb2
from motcua.store import SqliteStore
from motcua.store.sqlite import dumps
from motcua.unit_of_work import UnitsOfWork
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.drafts import ApologyForms
from routing.adapters.instances import INSTANCES, InstanceRecord, to_document
from routing.application.repository import Instances
from routing.application.sweeps import SlaSweep, SweepReport
from routing.config import RoutingSettings
from routing.domain.instance import FactKind, WorkflowInstance
from routing.domain.process import ProcessDefinition

SEALER = FakeSealer()  # forms sealed for real in tests/integration/test_forms_sealed.py

CALENDAR = vietnam_calendar()
DISTRICT = "bim-son"
UNIT_ID = "000.00.06.H56"
PROCEDURE = "1.004616"
DESK = {"official_id": "mc-bim-son", "unit": DISTRICT, "roles": ["receive", "return"]}
ActRow = tuple[int, int, LoadResult, LoadResult, dict[str, float]]  # api processes, clients, Act, raw, Act's costs
ACT_METHOD = "/motcua.routing.v1.RoutingService/Act"


class BenchFailed(Exception):
    """A figure could not be measured (a call failed, a sweep did other work than planned)."""


def process(duration_hours: int) -> dict[str, Any]:
    """A district procedure of five steps, the receiving desk's first with half the time."""
    shares = (("receive", 0.5), ("review", 0.2), ("sign", 0.1), ("seal", 0.1), ("return", 0.1))
    return {"steps": [{"role": role, "unit": DISTRICT, "unit_id": UNIT_ID, "level": "district", "share": share}
                      for role, share in shares],
            "time_type": "working_days", "duration_hours": duration_hours, "supplement_policy": "pause"}


# -- (a) Act through the api process --------------------------------------------------------------


def open_dossiers(instances: Instances, count: int) -> list[list[Any]]:
    """``count`` dossiers opened as the worker opens them (their events published): [code, version]."""
    definition = process(24)
    now = instances.clock()
    due = ProcessDefinition.from_dict(definition).due_from(now, CALENDAR)

    def open_one(n: int) -> list[Any]:
        stored = instances.open({"dossier_id": f"a{n}", "code": f"{UNIT_ID}-{now:%y%m%d}-{n:06d}",
                                 "receiving_unit": DISTRICT, "area": DISTRICT,
                                 "procedure_code": PROCEDURE, "received_at": now.isoformat(),
                                 "due_at": due.isoformat(), "process": definition})
        return [stored.instance.code, stored.version]

    with ThreadPoolExecutor(8) as pool:  # concurrent writers share commits (the store's group commit)
        return list(pool.map(open_one, range(count)))


def act_payloads(dossiers: list[list[Any]], clients: int) -> list[bytes]:
    """One payload per client: the desk official and a slice of the dossiers of its own."""
    return [json.dumps({"official": DESK, "dossiers": dossiers[i::clients]}).encode() for i in range(clients)]


def checked(result: LoadResult, what: str, clients: int, stack: Stack | None = None) -> LoadResult:
    if result.errors or not result.latencies:
        if any("ran out of dossiers" in error for error in result.errors):
            raise BenchFailed(f"{what} at {clients} clients: {result.errors[0]} (raise --dossiers)")
        tail = f"\n{stack.tail('routing-api')}" if stack else ""
        raise BenchFailed(f"{what} at {clients} clients failed: {result.errors[:3]}{tail}")
    return result


def bench_act(args: argparse.Namespace, workdir: Path, env: dict[str, str],
              workers: int) -> tuple[list[ActRow], dict[int, LoadResult], float]:
    """(a): for each count of api server processes, Act and the raw server (as many processes) at
    each concurrency, taking turns; then echo at each concurrency. Also the seconds opening the
    dossiers took."""
    rows: list[ActRow] = []
    seeding = 0.0
    echo_payload = b""
    for api_processes in args.api_processes:
        more, seconds, echo_payload = bench_act_with(args, workdir / f"api-{api_processes}", env, workers,
                                                     api_processes)
        rows += more
        seeding += seconds
    echoes = {}
    with echo_server(workdir / "echo", workers) as (echo_address, echo_pid):
        for clients in args.clients:
            echoes[clients] = checked(measure_clients(echo_address, "echo", echo_payload, clients, args.processes,
                                                      args.seconds, args.warmup, {"echo-server": echo_pid}),
                                      "echo", clients)
    return rows, echoes, seeding


def bench_act_with(args: argparse.Namespace, workdir: Path, env: dict[str, str], workers: int,
                   api_processes: int) -> tuple[list[ActRow], float, bytes]:
    """(a) with ``api_processes`` server processes, on a store seeded here."""
    settings = RoutingSettings.load(data_dir=workdir / "data")
    port = infra.free_port()
    api_env = {**env, "MOTCUA_DATA_DIR": str(settings.data_dir), "MOTCUA_API_PROCESSES": str(api_processes)}
    stack = Stack([api_spec("routing", api_env, port)], workdir / "logs")
    with stack:
        stack.wait_ready(180)
        address, api_pid = f"127.0.0.1:{port}", stack.pid("routing-api")
        # The api's own store file (settings.sqlite_path), opened beside it: SQLite's WAL lets both write.
        store, publisher = SqliteStore(settings.sqlite_path), Publisher(env["MOTCUA_AMQP_URI"])
        try:
            instances = Instances(UnitsOfWork(store, Outbox(publisher)), CALENDAR, settings.clock(), records=INSTANCES)
            started = time.perf_counter()
            dossiers = open_dossiers(instances, args.dossiers * len(args.clients))
            seeding = time.perf_counter() - started
        finally:
            publisher.close()
            store.close()
        request = routing_pb2.ActRequest(request_id=f"bench-{uuid.uuid4().hex}", code=dossiers[0][0],
                                         official=routing_pb2.Official(**DESK), action="claim",
                                         expected_version=1).SerializeToString()
        watch = {"routing-api": api_pid, "rabbitmq": find_pid("beam.smp")}
        metrics = metrics_urls(stack)["routing-api"]
        rows = []
        # Act puts nothing in S3 (claim, complete): the raw call is its store write and its publish.
        with raw_server(workdir / "raw", env, api_processes, workdir / "raw.sqlite3", s3_puts=0, publishes=1) \
                as (raw_address, raw_pids):
            for n, clients in enumerate(args.clients):
                mine = dossiers[n * args.dossiers:(n + 1) * args.dossiers]  # never acted on before
                before = scrape(metrics)
                act = checked(measure_clients(address, "act", act_payloads(mine, clients), clients, args.processes,
                                              args.seconds, args.warmup, watch), "Act", clients, stack)
                costs = call_costs(before, scrape(metrics), ACT_METHOD)
                raw = checked(measure_clients(raw_address, "raw", request, clients, args.processes, args.seconds,
                                              args.warmup, {"rabbitmq": watch["rabbitmq"],
                                                            **{f"raw-{i}": pid for i, pid in enumerate(raw_pids)}}),
                              "raw", clients)
                rows.append((api_processes, clients, act, raw, costs))
    return rows, seeding, request


# -- (b) the SLA sweep in this process ------------------------------------------------------------



@dataclass
class SweepFigures:
    size: int
    due_s: list[float]  # one sweep per round, each over a fresh due set
    empty_s: list[float]  # sweeps with nothing due

    @property
    def due_median(self) -> float:
        return statistics.median(self.due_s)

    @property
    def empty_median(self) -> float:
        return statistics.median(self.empty_s)


class Seeder:
    """Open dossiers written straight into the store, fast enough for 100k: for each distinct
    receipt instant ONE real document (``WorkflowInstance.open`` and ``to_document``, what
    ``Instances.open`` writes, less the outbox), validated and encoded by the store's own schema
    once; each dossier is that document under its own id and code, inserted many rows per
    transaction (as bench_store.py does) — one ``insert`` per document would cost ~1.5 ms each, most
    of it validating identical documents."""

    def __init__(self, store: SqliteStore):
        self._store = store
        self._collection = store.collection(InstanceRecord)  # creates the table and every index
        self._definition = ProcessDefinition.from_dict(process(320))  # 40 working days, 20 for the desk
        self._templates: dict[dt.datetime, dict[str, Any]] = {}
        self.count = 0

    def template(self, received_at: dt.datetime) -> dict[str, Any]:
        if received_at not in self._templates:
            instance = WorkflowInstance.open(
                definition=self._definition, dossier_id="template", code="template", receiving_unit=DISTRICT,
                area=DISTRICT,
                procedure_code=PROCEDURE, received_at=received_at, now=received_at, calendar=CALENDAR,
                due_at=self._definition.due_from(received_at, CALENDAR), request_id="open:template")
            doc = {**to_document(instance, received_at), "revision": 1}
            self._templates[received_at] = self._collection.schema.prepare(doc, version=1)
        return self._templates[received_at]

    def add(self, received: list[dt.datetime]) -> None:
        """One dossier received at each instant of ``received``."""
        rows = (self._row(self.template(at), self.count + i) for i, at in enumerate(received))
        with self._store._write() as conn:
            conn.executemany(f"INSERT INTO {InstanceRecord._meta['collection']} (_id, version, doc) VALUES (?, 1, ?)",
                             rows)
        self.count += len(received)

    @staticmethod
    def _row(template: dict[str, Any], n: int) -> tuple[str, str]:
        dossier_id, code = f"s{n}", f"{UNIT_ID}-sla-{n:06d}"
        instance = template["instance"]
        opened = {**instance["timeline"][0], "request_id": f"open:{dossier_id}"}
        doc = {**template, "_id": dossier_id, "code": code,
               "instance": {**instance, "dossier_id": dossier_id, "code": code, "timeline": [opened]}}
        return dossier_id, dumps(doc)


def due_sets(count: int, first_received: dt.datetime) -> Iterator[dt.datetime]:
    """The receipt instant of each fresh due set: one working hour apart, so set g's first step is
    due soon (8 working hours before its deadline) an hour after set g-1's, and every set's
    deadline comes after the last set's turn: a swept set is never due again here."""
    for g in range(count):
        yield CALENDAR.add_working_hours(first_received, dt.timedelta(hours=g))


def filler(count: int, before: dt.datetime) -> list[dt.datetime]:
    """Receipt instants of dossiers not due for weeks: the five working days before ``before``,
    every 12 working minutes (200 distinct instants, so next_check_at values spread)."""
    start = before - dt.timedelta(days=7)
    instants = [CALENDAR.add_working_hours(start, dt.timedelta(minutes=12 * k)) for k in range(200)]
    return [instants[n % len(instants)] for n in range(count)]


def timed_sweep(sweep: SlaSweep) -> tuple[float, SweepReport]:
    started = time.perf_counter()
    report = sweep.sweep([DISTRICT])
    return time.perf_counter() - started, report


def bench_sweeps(args: argparse.Namespace, workdir: Path, amqp: str,
                 objects: ObjectStore) -> tuple[list[SweepFigures], str, float]:
    """(b): figures per size, the query plan of the sweep's claim, and the seconds seeding took."""
    path = workdir / "sweep.sqlite3"
    seeder_store = SqliteStore(path, synchronous="OFF")
    seeder = Seeder(seeder_store)
    first_due = dt.datetime(2027, 3, 1, 9, 0, tzinfo=VN_TZ)  # a Monday
    received = list(due_sets(len(args.sizes) * args.rounds, first_due))
    turns = [seeder.template(at)["next_check_at"] for at in received]  # when each set becomes due soon
    store, publisher = SqliteStore(path), Publisher(amqp)
    clock = Clock(turns[0])
    instances = Instances(UnitsOfWork(store, Outbox(publisher)), CALENDAR, clock, records=INSTANCES)
    sweep = SlaSweep(instances, ApologyForms(objects, SEALER),
                     lease=dt.timedelta(minutes=2), batch=max(500, args.due))
    due_query = {"area": DISTRICT, "next_check_at": {"$lte": clock.now}}
    plan = store.collection(InstanceRecord).query_plan(due_query, [("next_check_at", 1)], limit=1)
    figures, seeding = [], 0.0
    try:
        for stage, size in enumerate(args.sizes):
            mine = range(stage * args.rounds, (stage + 1) * args.rounds)
            started = time.perf_counter()
            seeder.add(filler(size - seeder.count - args.due * len(mine), turns[0]))
            for g in mine:
                seeder.add([received[g]] * args.due)
            seeding += time.perf_counter() - started
            if (stored := store.collection(InstanceRecord).count({"area": DISTRICT})) != size:
                raise BenchFailed(f"the swept district holds {stored:,} dossiers, not {size:,}")
            figures.append(sweep_stage(args, sweep, clock, [turns[g] for g in mine], size))
    finally:
        publisher.close()
        store.close()
        seeder_store.close()
    return figures, plan, seeding


def sweep_stage(args: argparse.Namespace, sweep: SlaSweep, clock: Clock, turns: list[dt.datetime],
                size: int) -> SweepFigures:
    """One sweep at each set's turn (only that set is due), then sweeps with nothing due."""
    figures = SweepFigures(size, [], [])
    for at in turns:
        clock.now = at
        seconds, report = timed_sweep(sweep)
        expected = {FactKind.DUE_SOON.value: args.due}
        if (report.claimed, report.written, report.failed, report.facts) != (args.due, args.due, 0, expected):
            raise BenchFailed(f"sweep at {size:,} dossiers: {report} (expected {args.due} due-soon dossiers)")
        figures.due_s.append(seconds)
    for _ in range(args.empty_repeats):
        seconds, report = timed_sweep(sweep)
        if report.claimed:
            raise BenchFailed(f"sweep at {size:,} dossiers with nothing due claimed {report.claimed}")
        figures.empty_s.append(seconds)
    return figures


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="8,32", help="comma-separated concurrencies")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per figure")
    parser.add_argument("--warmup", type=float, default=1.0, help="load before each window")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--dossiers", type=int, default=3000, help="dossiers opened for each concurrency")
    parser.add_argument("--sizes", default="10000,100000", help="open dossiers in the swept district")
    parser.add_argument("--due", type=int, default=200, help="dossiers due at each sweep")
    parser.add_argument("--rounds", type=int, default=3, help="sweeps over a fresh due set per size (1-4)")
    parser.add_argument("--empty-repeats", type=int, default=100, help="sweeps with nothing due per size")
    parser.add_argument("--api-processes", default=f"1,{usable_cpus()}",
                        help="comma-separated MOTCUA_API_PROCESSES to measure (default: 1 and the usable CPUs)")
    parser.add_argument("--no-sweeps", action="store_true", help="(a) only")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.api_processes = list(dict.fromkeys(int(p) for p in args.api_processes.split(",")))
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if len(args.sizes) * args.rounds > 8 or args.sizes != sorted(args.sizes):
        parser.error("the due sets are an hour apart inside one 8-hour warning window: sizes x rounds <= 8, "
                     "sizes ascending")
    started = time.perf_counter()
    amqp = ensure_amqp_uri()
    workers = RoutingSettings.load().grpc_workers  # the api's thread pool; the echo server gets the same

    with (tempfile.TemporaryDirectory(prefix="motcua-bench-routing-") as tmp, seaweedfs_for_tests() as s3,
          private_vhost(amqp, prefix="motcua-bench") as vhost):
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        objects = s3.store(bucket)
        try:
            # the api process creates the bucket the sweep's form 04 would go to, were a dossier overdue
            act_rows, echoes, act_seeding = bench_act(args, Path(tmp), {"MOTCUA_AMQP_URI": vhost, **s3.env(bucket)},
                                                      workers)
            sweeps = bench_sweeps(args, Path(tmp), vhost, objects) if not args.no_sweeps else None
        except BenchFailed as failed:
            print(failed, file=sys.stderr)
            return 1
        finally:
            if s3.server is None:  # a shared S3 (make run): leave no benchmark objects behind
                drop_bucket(objects)

    print(f"routing api alone and the SLA sweep in process (grpcio {grpc.__version__}, {workers} server threads, "
          f"{os.cpu_count()} CPUs; SQLite store, RabbitMQ with publisher confirms)")
    print_act(args, act_rows, echoes, act_seeding)
    if sweeps is not None:
        print_sweeps(args, *sweeps)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


def print_act(args: argparse.Namespace, rows: list[ActRow], echoes: dict[int, LoadResult], seeding: float) -> None:
    print(f"\n(a) Act (the desk claims, then completes, the first step of dossiers of its own; expected_version "
          f"checked), vs the raw baseline (per call 1 fsynced SQLite insert + 1 confirmed publish, as many server "
          f"processes) and vs a bare grpcio echo server receiving an ActRequest's bytes; {args.processes} client "
          f"processes, one channel per client, {args.seconds:g} s window after {args.warmup:g} s of load; "
          f"{args.dossiers:,} dossiers opened for each concurrency ({seeding:.0f} s in all). Goals: act/raw >= "
          f"{API_GOALS['raw']}, p99 <= {API_GOALS['p99']:g} x raw p99")
    print_vs_baselines("act", rows, echoes, "1 publish, 1 confirm, 1 write, 1 commit, no S3")


def print_sweeps(args: argparse.Namespace, figures: list[SweepFigures], plan: str, seeding: float) -> None:
    print(f"\n(b) SLA sweep of one district, {args.due} dossiers due (first step due soon: one due_soon event each, "
          f"no form 04), the rest not due for weeks; median of {args.rounds} sweeps over fresh due sets, and of "
          f"{args.empty_repeats} with nothing due. Seeded with synchronous=OFF in {seeding:.0f} s; swept with "
          f"synchronous=FULL")
    print(f"    claim's plan: {plan}")
    print(f"    {'open':>8} | {'due sweep s':>11} {'ms/due':>7} {'min s':>6} {'max s':>6} | {'nothing due ms':>14}")
    for f in figures:
        print(f"    {f.size:>8,} | {f.due_median:>11.3f} {f.due_median / args.due * 1000:>7.2f} {min(f.due_s):>6.3f} "
              f"{max(f.due_s):>6.3f} | {f.empty_median * 1000:>14.3f}")
    first, last = figures[0], figures[-1]
    print(f"    {last.size:,}/{first.size:,}: due sweep x{last.due_median / first.due_median:.2f}, "
          f"nothing due x{last.empty_median / first.empty_median:.2f}")


if __name__ == "__main__":
    sys.exit(main())
