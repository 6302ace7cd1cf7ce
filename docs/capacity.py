"""Capacity model: dossiers per day per area → worker replicas, queues, broker, store and S3 sizing.

    .venv/bin/python docs/capacity.py                                  # Thanh Hóa: 27 areas x 400/day
    .venv/bin/python docs/capacity.py --areas 27 --per-area 400 --big thanh-hoa=3000
    .venv/bin/python docs/capacity.py --worker-rate routing=40         # a measured rate (messages/s)

How it counts (docs/capacity.md explains each figure and where it comes from):
- messages a dossier makes each service consume: the public events of one journey (the e2e
  journey, motcua_dev.harness.JOURNEY) that the service subscribes to (topology.SUBSCRIPTIONS),
  plus the work messages sent to it (WORK below);
- the peak: a day's dossiers arrive in the 8 working hours, the busiest hour PEAK times the average;
- a worker replica handles --worker-rate messages/s of its service (default: what one worker per
  service sustained in bench_platform.py on the 2-core development machine, --bench-dossiers-per-s),
  and is kept at --utilisation of it;
- sizes per dossier: DOCUMENT_MB of documents, kept by intake and twice more by the archive
  (two write-once copies); RECORD_KB of store records per service.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from motcua.messaging.topology import SERVICES, SUBSCRIPTIONS
from motcua.settings import PlatformSettings

# Work messages (not events) each service receives per dossier: intake renders the receipt (form
# 01), routing takes the dossier and the signing result, signing signs once (one signing round).
WORK = {"intake": 1, "routing": 2, "signing": 1, "notify": 0, "archive": 0}
WORKING_HOURS = 8
PEAK = 2.5  # busiest hour / average working hour (Monday mornings, end of month)
DOCUMENT_MB = 1.5  # a dossier's scanned documents and results (PDF), on average
RECORD_KB = {"intake": 12, "routing": 16, "signing": 3, "notify": 3, "archive": 4}  # + processed-message ids
PROCESSED_KB = 0.2  # one processed-message id per delivery (idempotency), per consuming service
MESSAGE_KB = 4  # an average message (CloudEvents JSON / protobuf, headers included)
OUTAGE_H = 4  # a consumer outage the broker must hold the backlog of
# tests/perf/bench_platform.py --dossiers 100 on the 2-core development machine (shared with other
# work; one process per service; officials played by OfficialsAtWork): 100 dossiers archived in
# 71.5 s. A lower bound of what one replica of each service carries.
BENCH_DOSSIERS_PER_S = 1.4


def journey_events() -> dict[str, int]:
    from motcua_dev.harness import JOURNEY

    return {t.removeprefix("vn.motcua.").removesuffix(".v1"): n for t, n in JOURNEY.items()}


def messages_per_dossier() -> dict[str, int]:
    """Deliveries each service consumes per dossier (events it subscribes to + work sent to it)."""
    events = journey_events()
    result = {}
    for service in SERVICES:
        patterns = SUBSCRIPTIONS[service]
        subscribed = sum(n for event, n in events.items()
                         if "#" in patterns or event in patterns)
        result[service] = subscribed + WORK[service]
    return result


@dataclass
class Area:
    name: str
    per_day: float


def plan(areas: list[Area], worker_rate: dict[str, float], utilisation: float, max_factor: float) -> str:
    per_dossier = messages_per_dossier()
    retries = len(PlatformSettings().retry_delays_ms)
    lines = ["messages per dossier, by consuming service: "
             + ", ".join(f"{s} {n}" for s, n in per_dossier.items()),
             "worker capacity (messages/s per replica): " + ", ".join(f"{s} {r:.1f}" for s, r in worker_rate.items()),
             "", f"{'area':<14}{'dossiers/day':>13}{'peak/h':>8}  " + "".join(f"{s:>9}" for s in SERVICES)
             + "   (replicas at peak; KEDA max = x" + f"{max_factor:g})"]
    total_replicas = {s: 0 for s in SERVICES}
    peak_total = 0.0
    for area in areas:
        peak_per_s = area.per_day / (WORKING_HOURS * 3600) * PEAK
        peak_total += peak_per_s
        row = []
        for service in SERVICES:
            rate = peak_per_s * per_dossier[service]
            replicas = max(1, math.ceil(rate / (worker_rate[service] * utilisation) - 1e-9)) if rate else 0
            total_replicas[service] += replicas
            row.append(f"{replicas:>9}")
        lines.append(f"{area.name:<14}{area.per_day:>13.0f}{peak_per_s * 3600:>8.0f}  " + "".join(row))
    lines.append(f"{'total':<14}{sum(a.per_day for a in areas):>13.0f}{peak_total * 3600:>8.0f}  "
                 + "".join(f"{total_replicas[s]:>9}" for s in SERVICES))
    per_day = sum(a.per_day for a in areas)
    msgs_per_dossier = sum(per_dossier.values())
    queues = len(areas) * len(SERVICES) * (1 + retries + 1) + 1
    peak_msgs = peak_total * msgs_per_dossier
    backlog_gb = peak_msgs / PEAK * OUTAGE_H * 3600 * MESSAGE_KB / 1024 / 1024
    store_gb_year = per_day * 365 * (sum(RECORD_KB.values()) + msgs_per_dossier * PROCESSED_KB) / 1024 / 1024
    s3_tb_year = per_day * 365 * DOCUMENT_MB * 3 / 1024 / 1024
    lines += ["",
              f"broker: {queues} queues ({len(areas)} areas x {len(SERVICES)} services x (work + {retries} retry "
              f"+ parking) + the event stream); peak {peak_msgs:.1f} deliveries/s ({peak_msgs * 2:.1f} "
              f"messages/s in and out), a {OUTAGE_H} h consumer outage holds {backlog_gb:.2f} GB; "
              f"~{sum(total_replicas.values()) * 2} connections (a consumer and a publisher per worker pod)",
              f"store (MongoDB): {store_gb_year:.1f} GB a year of records (before indexes, x1.5 with them)",
              f"S3: {s3_tb_year:.2f} TB a year (documents once in intake + two locked archive copies), "
              f"{per_day * 365 * (1 + 2):.0f} objects a year"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--areas", type=int, default=27, help="areas of average size")
    parser.add_argument("--per-area", type=float, default=400, help="dossiers a day in an average area")
    parser.add_argument("--big", action="append", default=[], metavar="AREA=PER_DAY",
                        help="an area of its own size (e.g. the provincial city, the province's area)")
    parser.add_argument("--bench-dossiers-per-s", type=float, default=BENCH_DOSSIERS_PER_S,
                        help="dossiers/s one worker per service carried end to end (bench_platform.py)")
    parser.add_argument("--worker-rate", action="append", default=[], metavar="SERVICE=MSGS_PER_S",
                        help="a measured per-replica rate of a service (motcua_message_duration_seconds)")
    parser.add_argument("--utilisation", type=float, default=0.5, help="share of a replica's rate used at peak")
    parser.add_argument("--max-factor", type=float, default=3.0, help="KEDA maxReplicaCount / peak replicas")
    args = parser.parse_args(argv)
    per_dossier = messages_per_dossier()
    rates = {s: args.bench_dossiers_per_s * per_dossier[s] or 1.0 for s in SERVICES}
    for item in args.worker_rate:
        service, rate = item.split("=")
        rates[service] = float(rate)
    areas = [Area(f"area-{n + 1}", args.per_area) for n in range(args.areas)]
    for item in args.big:
        name, per_day = item.split("=")
        areas.append(Area(name, float(per_day)))
    print(plan(areas, rates, args.utilisation, args.max_factor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
