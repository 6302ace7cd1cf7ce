"""Benchmark (not a test): GetStatistics' query time at 10,000 and 100,000 dossiers.

    .venv/bin/python tests/perf/bench_statistics.py [--rounds 5]

Stores the kind of population the verification test checks (services/routing/tests/integration/
test_statistics.py: every channel and status) in routing's instance collection on the embedded
SQLite store: 10,000 dossiers received in the last six months, measured, then the 90,000 of the
five years before (all ended: a province's history), measured again. Times
:class:`routing.application.statistics.StatisticsQuery` for a district over the running month, a
unit over the past month and a district with one procedure over the last quarter; beside it, the
baseline a statistics call must not be: reading the district's documents and classifying each
(``kpi766.count``). Best of ``--rounds`` per figure. The ratios 100k/10k say how each grows with
the history: index ranges with what they count (the quarter also counts the history's dossiers
that ended in it), the scan with everything. Seeding uses synchronous=OFF (the queries are what
is measured); about 80 s in all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from motcua.store import SqliteStore
from motcua.store.port import Collection
from routing.adapters.instances import InstanceRecord
from routing.application.statistics import StatisticsQuery
from routing.domain.kpi766 import Channel, DossierSnapshot, Period, count

ROUTING_TESTS = Path(__file__).resolve().parents[2] / "services/routing/tests/integration"
sys.path.insert(0, str(ROUTING_TESTS))
from test_statistics import AREAS, FIRST, NOW, PERIODS, generated, store_all  # noqa: E402 (the tested population)

SIZES = (10_000, 100_000)
QUERIES: dict[str, dict] = {
    "district, running month": {"area": "bim-son", "period": PERIODS["running month"]},
    "unit, past month": {"unit": "phuong-ba-dinh", "period": PERIODS["past month"]},
    "district + procedure, quarter": {"area": "ba-thuoc", "procedure_code": "2.000908",
                                      "period": PERIODS["last quarter"]},
}


def best_of(rounds: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def scan(collection: Collection, district: str, period: Period) -> None:
    """The baseline: every document of the district read and classified one by one."""
    docs = collection.find({"area": district})
    count((DossierSnapshot(channel=Channel(d["channel"]), received_at=d["received_at"], due_at=d["due_at"],
                           status=d["status"], finished_at=d["ended_at"], returned_at=d["returned_at"],
                           paused=d["open_state"] == "paused") for d in docs), period, today=NOW.date())


def check(query: StatisticsQuery, population, size: int) -> None:
    """The verification test's check at this size: every query's counts are the domain's own
    classification of the same dossiers, one by one."""
    from test_statistics import expected

    for name, q in QUERIES.items():
        scope = {k: v for k, v in q.items() if k != "period"}
        got = query.indicators(**q).counts
        want = expected(population, q["period"], **scope)
        assert got == {k: want.get(k, 0) for k in got}, (size, name)


def measure(query: StatisticsQuery, collection: Collection, rounds: int) -> dict[str, float]:
    out = {name: best_of(rounds, lambda q=q: query.indicators(**q)) for name, q in QUERIES.items()}
    out["baseline: scan + classify the district"] = best_of(
        rounds, lambda: scan(collection, "bim-son", PERIODS["running month"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    # the recent six months, then the 90,000 dossiers of the five years before (all ended)
    recent = generated(SIZES[0], seed=766)
    history = generated(SIZES[1] - SIZES[0], seed=767, since=FIRST - dt.timedelta(days=5 * 365), until=FIRST)
    population = recent + history
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="motcua-bench-stats-") as tmp:
        store = SqliteStore(Path(tmp) / "routing.sqlite3", synchronous="OFF")
        try:
            seeded = 0
            for size in SIZES:
                seed_started = time.perf_counter()
                query = store_all(store, population[seeded:size], first_id=seeded)
                seeded = size
                print(f"seeded {size:,} dossiers ({time.perf_counter() - seed_started:.0f} s)", flush=True)
                check(query, population[:size], size)
                print(f"    counts at {size:,}: equal to the one-by-one classification", flush=True)
                results[size] = measure(query, store.collection(InstanceRecord), args.rounds)
            total = store.collection(InstanceRecord).count({"area": {"$in": sorted(set(AREAS.values()))}})
        finally:
            store.close()
    small, large = SIZES
    print(f"\nGetStatistics' query (StatisticsQuery.indicators, ~27 index-range counts) on the SQLite store, "
          f"{total:,} dossiers at the end; best of {args.rounds}")
    print(f"    {'query':<40} | {f'{small:,} ms':>10} {f'{large:,} ms':>11} | {'100k/10k':>8}")
    for name in results[small]:
        a, b = results[small][name] * 1000, results[large][name] * 1000
        print(f"    {name:<40} | {a:>10.2f} {b:>11.2f} | {b / a:>8.2f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
