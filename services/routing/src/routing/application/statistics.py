"""Decision 766 progress indicators of a unit or an area for a period, by index-range counts.

Each instance's document carries the indicator columns of its snapshot (``to_document``: channel,
received_at, ended_at with finish_class, open_state, due_at, returned_at), indexed behind the scope
(``receiving_unit`` for a unit, ``area`` for an area: a district with its communes, or the province
with its agencies). Every indicator is
then a handful of ``count`` queries over index ranges; no call reads a dossier's document, and none
scans the scope's dossiers. The classification itself is :func:`routing.domain.kpi766.classify`;
the counts here are the same sets expressed as ranges (the integration test checks them against
``kpi766.count`` over 100,000 generated dossiers). With the period's local dates turned into
instants in Asia/Ho_Chi_Minh — ``p0`` its first midnight, ``p1`` the midnight after ``as_of`` (its
end, or today while it runs) and ``a0`` the midnight starting ``as_of``:

* received by channel: ``p0 <= received_at < p1``;
* carried over: received before ``p0`` and still open, or ended since ``p0``;
* finished early / on time / late, withdrawn: ``p0 <= ended_at < p1`` per finish class;
* open at ``as_of`` (still open, or ended after ``p1``): overdue when ``due_at < a0`` (the due date
  is behind ``as_of``; a due date is never before the receipt, so such a dossier was received by
  ``p1``), on time otherwise (received before ``p1``); paused when waiting for the applicant now;
* returned: ``p0 <= returned_at < p1``.

What a call costs: the index entries of the period's arrivals and returns, of the dossiers open now
and of those that ended since the period began — not the scope's history. A procedure narrows
each of these ranges by a check of the row (on SQLite 3.40 an expression index is never covering,
so every counted entry costs a row lookup anyway).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from motcua.errors import InvalidArgument
from motcua.store.port import Collection
from motcua.worktime import VN_TZ
from routing.domain.kpi766 import FINISH_KPIS, RECEIVED, Kpi, Period, local_date, rates
from routing.domain.status import Status

SCOPES = {"unit": "receiving_unit", "area": "area"}  # the request's word → the indexed column
OPEN_STATES = ("in_process", "paused")
# Terminal statuses only grow (an area's whole history): the statistics count them per period.
AT_WORK = tuple(s for s in Status if not s.terminal)
OVERDUE = {"in_process": Kpi.IN_PROCESS_OVERDUE, "paused": Kpi.PAUSED_OVERDUE}


@dataclass(frozen=True)
class Statistics:
    counts: dict[Kpi, int]
    percentages: dict[str, float]  # only those with a base to divide by


def midnight(day: dt.date) -> dt.datetime:
    """The instant a local date starts in Vietnam, in UTC (how the store compares instants)."""
    return dt.datetime.combine(day, dt.time(), VN_TZ).astimezone(dt.UTC)


@dataclass(frozen=True)
class AtWork:
    """An area's dossiers at work now: how many in each non-terminal status, and how many of the
    open ones (in process, or paused for the applicant) have a due date behind today."""

    by_status: dict[Status, int]
    overdue: dict[str, int]  # open state → overdue dossiers


class StatisticsQuery:
    def __init__(self, collection: Collection, clock: Callable[[], dt.datetime]):
        self._collection = collection
        self._clock = clock

    def period(self, start: dt.datetime, end: dt.datetime | None = None) -> Period:
        """The period of the local dates of two instants; without an end, it runs to today."""
        first = local_date(start)
        return Period(first, local_date(end) if end is not None else max(first, local_date(self._clock())))

    def indicators(self, *, unit: str = "", area: str = "", procedure_code: str = "",
                   period: Period) -> Statistics:
        scope = self._scope(unit, area, procedure_code)
        as_of = min(period.end, local_date(self._clock()))
        counts = dict.fromkeys(Kpi, 0)
        if as_of >= period.start:
            counts.update(self._count(scope, midnight(period.start), midnight(as_of + dt.timedelta(days=1)),
                                      midnight(as_of)))
        return Statistics(counts, {k: v for k, v in rates(counts).items() if v is not None})

    def at_work(self, area: str) -> AtWork:
        """The operators' gauges of ``area``: index-range counts, like the indicators (``(area,
        status)`` and ``(area, open_state, due_at)``), never a read of the dossiers themselves."""
        scope = self._scope("", area, "")
        today = local_date(self._clock())
        open_now = self._open(lambda **conditions: self._collection.count({**scope, **conditions}),
                              midnight(today + dt.timedelta(days=1)), midnight(today))
        return AtWork({status: self._collection.count({**scope, "status": int(status)}) for status in AT_WORK},
                      {state: open_now[kpi] for state, kpi in OVERDUE.items()})

    @staticmethod
    def _scope(unit: str, area: str, procedure_code: str) -> dict[str, Any]:
        given = {name: value.strip() for name, value in (("unit", unit), ("area", area)) if value.strip()}
        if len(given) != 1:
            raise InvalidArgument("unit", "give either a unit or an area (slug), not both"
                                  if given else "give a unit or an area (slug)")
        (name, value), = given.items()
        scope: dict[str, Any] = {SCOPES[name]: value}
        if procedure_code.strip():
            scope["procedure_code"] = procedure_code.strip()
        return scope

    def _count(self, scope: dict[str, Any], p0: dt.datetime, p1: dt.datetime, a0: dt.datetime) -> dict[Kpi, int]:
        def n(**conditions: Any) -> int:
            return self._collection.count({**scope, **conditions})

        out: dict[Kpi, int] = {}
        for channel, kpi in RECEIVED.items():
            out[kpi] = n(channel=channel.value, received_at={"$gte": p0, "$lt": p1})
        # Carried over: open now, or ended since p0, less those received since p0. Never as
        # "received_at < p0": for a unit, SQLite's planner reads that range on the (receiving_unit,
        # received_at) index, which is the unit's whole history. One count per open state and per
        # finish class: an equality keeps the planner on the state's index when a procedure is asked
        # too ($in made it prefer (procedure_code, receiving_unit)).
        since = {"received_at": {"$gte": p0}}
        out[Kpi.CARRIED_OVER] = sum(n(open_state=state) - n(open_state=state, **since) for state in OPEN_STATES) \
            + sum(n(finish_class=finish, ended_at={"$gte": p0}) - n(finish_class=finish, ended_at={"$gte": p0}, **since)
                  for finish in FINISH_KPIS)
        for finish, kpi in FINISH_KPIS.items():
            out[kpi] = n(finish_class=finish, ended_at={"$gte": p0, "$lt": p1})
        out.update(self._open(n, p1, a0))
        out[Kpi.RETURNED] = n(returned_at={"$gte": p0, "$lt": p1})
        return out

    @staticmethod
    def _open(n: Callable[..., int], p1: dt.datetime, a0: dt.datetime) -> dict[Kpi, int]:
        """Open at ``as_of`` (still open, or ended after ``p1``), overdue or on time by ``a0``."""
        ended_later = {"finish_class": {"$in": list(FINISH_KPIS)}, "ended_at": {"$gte": p1}}
        # those ended since p1 and received before it: all of them less the ones received since
        # (a "received_at < p1" range would read a unit's whole history, see _count)
        ended_later_on_time = n(**ended_later, due_at={"$gte": a0}) \
            - n(**ended_later, due_at={"$gte": a0}, received_at={"$gte": p1})
        return {
            Kpi.IN_PROCESS_OVERDUE: n(open_state="in_process", due_at={"$lt": a0})
            + n(**ended_later, due_at={"$lt": a0}),
            Kpi.IN_PROCESS_ON_TIME: n(open_state="in_process", due_at={"$gte": a0}, received_at={"$lt": p1})
            + ended_later_on_time,
            Kpi.PAUSED_OVERDUE: n(open_state="paused", due_at={"$lt": a0}),
            Kpi.PAUSED_ON_TIME: n(open_state="paused", due_at={"$gte": a0}, received_at={"$lt": p1}),
        }
