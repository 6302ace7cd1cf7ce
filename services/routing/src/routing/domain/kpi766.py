"""Decision 766/QĐ-TTg classification of a dossier for one period, for the statistics.

A pure function over a small snapshot, so an adapter can keep incremental counters per unit,
procedure and period: classify the snapshot before and after a change and apply :func:`delta`.

Judged by **date** in Asia/Ho_Chi_Minh, never by timestamp (DOMAIN.md): a result ready at 16:59 on
the due date and one ready at 07:01 are both on time; one ready the next morning is late, even a
minute after the due time. The categories:

* received in the period, by channel (online, desk, post), or carried over (received before the
  period and still open when it began);
* finished in the period (result ready, or stopped after examination): early (before the due
  date), on time (on it), late (after it);
* still open at the end of the period (or today, for the running period): in process or paused
  (waiting for the applicant), each on time or overdue (the due date is behind);
* returned (result delivered) or withdrawn in the period.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from motcua.errors import InvalidArgument
from motcua.worktime import VN_TZ
from routing.domain import fields
from routing.domain.instance import WorkflowInstance
from routing.domain.status import Status


class Channel(StrEnum):
    ONLINE = "online"
    DESK = "desk"
    POST = "post"


class Kpi(StrEnum):
    RECEIVED_ONLINE = "received_online"
    RECEIVED_DESK = "received_desk"
    RECEIVED_POST = "received_post"
    CARRIED_OVER = "carried_over"
    FINISHED_EARLY = "finished_early"
    FINISHED_ON_TIME = "finished_on_time"
    FINISHED_LATE = "finished_late"
    IN_PROCESS_ON_TIME = "in_process_on_time"
    IN_PROCESS_OVERDUE = "in_process_overdue"
    PAUSED_ON_TIME = "paused_on_time"
    PAUSED_OVERDUE = "paused_overdue"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"


RECEIVED = {Channel.ONLINE: Kpi.RECEIVED_ONLINE, Channel.DESK: Kpi.RECEIVED_DESK, Channel.POST: Kpi.RECEIVED_POST}


@dataclass(frozen=True)
class Period:
    """Inclusive local dates: a month is ``Period(date(2027, 2, 1), date(2027, 2, 28))``."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidArgument("period.end", f"{self.end} is before the start {self.start}")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


@dataclass(frozen=True)
class DossierSnapshot:
    """What the classification needs of a dossier (routing's instance and intake's channel)."""

    channel: Channel
    received_at: dt.datetime
    due_at: dt.datetime | None
    status: Status
    finished_at: dt.datetime | None = None  # left processing: result ready (9), stopped (8) or withdrawn (7)
    returned_at: dt.datetime | None = None
    paused: bool = False  # waiting for the applicant now (supplement, payment)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel", fields.choice(self.channel, Channel, "channel"))
        object.__setattr__(self, "status", fields.choice(self.status, Status, "status"))
        fields.instant(self.received_at, "received_at")
        for name in ("due_at", "finished_at", "returned_at"):
            fields.optional_instant(getattr(self, name), name)
        if self.status in (Status.RESULT_READY, Status.RETURNED, Status.STOPPED, Status.WITHDRAWN) \
                and self.finished_at is None:
            raise InvalidArgument("finished_at", f"is required for a dossier in status {self.status.describe()}")
        if self.status is Status.RETURNED and self.returned_at is None:
            raise InvalidArgument("returned_at", "is required for a returned dossier")


def local_date(t: dt.datetime) -> dt.date:
    return t.astimezone(VN_TZ).date()


def classify(d: DossierSnapshot, period: Period, today: dt.date | None = None) -> frozenset[Kpi]:
    """The categories ``d`` counts in for ``period``; ``today`` bounds a period still running (an
    open dossier is judged overdue against today, not against the period's future end)."""
    as_of = min(period.end, today) if today is not None else period.end
    received = local_date(d.received_at)
    if received > as_of or as_of < period.start:  # not received yet, or a period yet to begin
        return frozenset()
    out: set[Kpi] = set()
    ended = local_date(d.finished_at) if d.finished_at is not None else None
    due = local_date(d.due_at) if d.due_at is not None else None
    if received in period:
        out.add(RECEIVED[d.channel])
    elif ended is None or ended >= period.start:
        out.add(Kpi.CARRIED_OVER)  # open when the period began
    if ended is not None and period.start <= ended <= as_of:
        if d.status is Status.WITHDRAWN:
            out.add(Kpi.WITHDRAWN)
        elif due is None or ended == due:
            out.add(Kpi.FINISHED_ON_TIME)
        else:
            out.add(Kpi.FINISHED_EARLY if ended < due else Kpi.FINISHED_LATE)
    elif ended is None or ended > as_of:
        overdue = due is not None and as_of > due
        if d.paused and ended is None:
            out.add(Kpi.PAUSED_OVERDUE if overdue else Kpi.PAUSED_ON_TIME)
        else:
            out.add(Kpi.IN_PROCESS_OVERDUE if overdue else Kpi.IN_PROCESS_ON_TIME)
    if d.returned_at is not None and period.start <= local_date(d.returned_at) <= as_of:
        out.add(Kpi.RETURNED)
    return frozenset(out)


def finish_class(d: DossierSnapshot) -> str | None:
    """How a dossier that left processing counts once and for all (None while it is open):
    ``withdrawn``, or finished ``early`` / ``on_time`` / ``late`` by date against its due date. The
    statistics adapter stores it as an indexed field: finished counts are then index ranges."""
    if d.finished_at is None:
        return None
    if d.status is Status.WITHDRAWN:
        return Kpi.WITHDRAWN.value
    return by_date(d.finished_at, d.due_at)


def by_date(done: dt.datetime, due: dt.datetime | None) -> str:
    """``early``, ``on_time`` or ``late``: the day something was done against the day it was due
    (Decision 766 judges by date, in Vietnam's time); without a due date it is on time."""
    ended, due_day = local_date(done), local_date(due) if due is not None else None
    if due_day is None or ended == due_day:
        return "on_time"
    return "early" if ended < due_day else "late"


FINISH_KPIS = {"early": Kpi.FINISHED_EARLY, "on_time": Kpi.FINISHED_ON_TIME, "late": Kpi.FINISHED_LATE,
               "withdrawn": Kpi.WITHDRAWN}


def open_state(d: DossierSnapshot) -> str:
    """``ended`` once it left processing, else ``paused`` (waiting for the applicant) or ``in_process``."""
    if d.finished_at is not None:
        return "ended"
    return "paused" if d.paused else "in_process"


def delta(before: DossierSnapshot | None, after: DossierSnapshot | None, period: Period,
          today: dt.date | None = None) -> dict[Kpi, int]:
    """Counter changes for one dossier's change (None: not counted before / any more)."""
    old = classify(before, period, today) if before is not None else frozenset()
    new = classify(after, period, today) if after is not None else frozenset()
    return {**{k: -1 for k in old - new}, **{k: 1 for k in new - old}}


def count(snapshots: Iterable[DossierSnapshot], period: Period, today: dt.date | None = None) -> Counter[Kpi]:
    return Counter(k for s in snapshots for k in classify(s, period, today))


def rates(counts: Mapping[Kpi, int]) -> dict[str, float | None]:
    """Decision 766's percentages from the counters (None when there is nothing to divide by)."""
    def pct(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 2) if whole else None

    received = sum(counts.get(k, 0) for k in RECEIVED.values())
    finished = sum(counts.get(k, 0) for k in (Kpi.FINISHED_EARLY, Kpi.FINISHED_ON_TIME, Kpi.FINISHED_LATE))
    in_process = sum(counts.get(k, 0) for k in (Kpi.IN_PROCESS_ON_TIME, Kpi.IN_PROCESS_OVERDUE))
    paused = sum(counts.get(k, 0) for k in (Kpi.PAUSED_ON_TIME, Kpi.PAUSED_OVERDUE))
    return {
        "received_online": pct(counts.get(Kpi.RECEIVED_ONLINE, 0), received),
        "finished_early": pct(counts.get(Kpi.FINISHED_EARLY, 0), finished),
        "finished_on_time": pct(counts.get(Kpi.FINISHED_ON_TIME, 0), finished),
        "finished_late": pct(counts.get(Kpi.FINISHED_LATE, 0), finished),
        "in_process_overdue": pct(counts.get(Kpi.IN_PROCESS_OVERDUE, 0), in_process),
        "paused_overdue": pct(counts.get(Kpi.PAUSED_OVERDUE, 0), paused),
    }



def snapshot_of(instance: WorkflowInstance, channel: Channel | str) -> DossierSnapshot:
    """The snapshot of a workflow instance (the channel is intake's: routing is told it)."""
    status = instance.status
    finished = instance.finished_at or (instance.closed_at if status is Status.WITHDRAWN else None)
    return DossierSnapshot(channel=Channel(channel), received_at=instance.received_at, due_at=instance.due_at,
                           status=status, finished_at=finished,
                           returned_at=instance.closed_at if status is Status.RETURNED else None,
                           paused=status in (Status.SUPPLEMENT_REQUESTED, Status.PAYMENT_REQUESTED))
