"""SLA questions a sweep asks of an instance, as pure functions of the instance and ``now``.

* Is the active step / the dossier on time, due soon (within a window of working hours) or
  overdue? Overdue is derived, never a status (DOMAIN.md).
* When must a sweep look at the instance next (``next_check_at``)? The adapter stores it as an
  indexed field, so a sweep reads ``next_check_at <= now`` from the index instead of scanning.
  Between two such instants nothing a sweep acts on can change without an action, and every
  action recomputes it.
* Form 04: will the dossier miss its appointment, and if so which new appointment to promise and
  by when the apology must go out (no later than the current appointment)?
* Has the supplement deadline passed, and what does the procedure say happens then?
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from motcua.worktime import Calendar
from routing.domain import fields
from routing.domain.instance import FactKind, WorkflowInstance
from routing.domain.process import SupplementExpiry, TimeType, working_minutes
from routing.domain.status import CLOCK_RUNNING, Status

DEFAULT_SOON_HOURS = Decimal(8)  # one working day's warning
_MAX_DAYS_BACK = 3660  # ten years: a window longer than that is a misconfiguration
_APOLOGY_STATUSES = frozenset({Status.PROCESSING, Status.PAYMENT_REQUESTED})


class SlaState(StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


def soon_from(deadline: dt.datetime, hours: Decimal | int, calendar: Calendar) -> dt.datetime:
    """The earliest instant from which ``hours`` working hours or fewer are left before ``deadline``.

    The working-time calendar only counts forwards, so walk back a day at a time until the day
    holds enough working time, then count forwards inside it. (``motcua.worktime`` would be the
    place for a ``subtract_working_hours``.)
    """
    window = working_minutes(fields.number(hours, "hours"))
    local = deadline.astimezone(calendar.tz)
    day = local.date()
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=calendar.tz)
    have = calendar.working_time_between(midnight, local)
    for _ in range(_MAX_DAYS_BACK):
        # Strictly more: when a day holds exactly the window, the window began at the end of the
        # previous working day (nothing is worked in between), so keep walking back.
        if have > window:
            return calendar.add_working_hours(midnight, have - window)
        previous = midnight - dt.timedelta(days=1)
        have += calendar.working_time_between(previous, midnight)
        midnight = previous
    return midnight


def sla_state(deadline: dt.datetime, now: dt.datetime, calendar: Calendar,
              soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> SlaState:
    """Overdue from the deadline instant on (the work had to be done by then), due soon once the
    working time left is within the window."""
    if now >= deadline:
        return SlaState.OVERDUE
    if now >= soon_from(deadline, soon_hours, calendar):
        return SlaState.DUE_SOON
    return SlaState.ON_TIME


def step_sla(instance: WorkflowInstance, now: dt.datetime,
             soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> SlaState | None:
    """The active step's state; None while the clock does not run (supplement) or once closed."""
    step = instance.current
    if instance.status not in CLOCK_RUNNING or step is None:
        return None
    return sla_state(step.deadline, now, instance.calendar, soon_hours)


def dossier_sla(instance: WorkflowInstance, now: dt.datetime,
                soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> SlaState | None:
    if instance.status not in CLOCK_RUNNING:
        return None
    return sla_state(instance.due_at, now, instance.calendar, soon_hours)


# -- form 04 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApologyDecision:
    needed: bool
    new_due_at: dt.datetime | None = None  # the new appointment to promise
    issue_by: dt.datetime | None = None  # the current appointment: form 04 goes out no later than it
    late: bool = False  # the appointment has passed already: issue at once, the rule is already missed


def finish_after(instance: WorkflowInstance, start: dt.datetime, from_index: int) -> dt.datetime:
    """When steps ``from_index`` onwards would be done if each took, from ``start``, the time the
    law gives it (its share of the duration); ``start`` itself when no step is left."""
    remaining = instance.definition.remaining_time(from_index)
    if not remaining:
        return start
    if isinstance(remaining, dt.timedelta):
        return instance.calendar.add_working_hours(start, remaining)
    return _days_after(instance.calendar, start, remaining)


def _days_after(calendar: Calendar, start: dt.datetime, days: int) -> dt.datetime:
    """Whole days from the day of ``start`` (not from the next clock start, as for a reception: a
    step's deadline is the end of its day, and the next step's days count from there), ending at
    the close of a working day."""
    day = start.astimezone(calendar.tz).date() + dt.timedelta(days=days)
    if not calendar.is_working_day(day):
        day = calendar.next_working_day(day)
    return dt.datetime.combine(day, calendar.hours.sessions[-1][1], tzinfo=calendar.tz)


def apology_decision(instance: WorkflowInstance, now: dt.datetime) -> ApologyDecision:
    """Whether the dossier will miss the appointment it holds, and the apology (form 04) that says so.

    It will miss it once the active step is past its own deadline and the steps after it, given
    their statutory time from now, would not end before the appointment. On schedule that moment
    is the step's deadline itself (its deadline plus the later steps' time is the due date
    exactly), so the answer changes only at instants :func:`next_check_at` returns, and the last
    of them is the appointment: a sweep always decides no later than the due date. The new
    appointment gives the active step its full time again from now, plus the later steps'."""
    promised = instance.promised_due_at
    step = instance.current
    if instance.status not in _APOLOGY_STATUSES or step is None:
        return ApologyDecision(False)
    if now < step.deadline or finish_after(instance, now, step.index + 1) < promised:
        return ApologyDecision(False, issue_by=promised)
    new_due_at = finish_after(instance, now, step.index)
    if new_due_at <= promised:  # the active step's share rounds to nothing: the next minute or day
        calendar = instance.calendar
        new_due_at = (calendar.add_working_hours(promised, dt.timedelta(minutes=1))
                      if instance.definition.time_type is TimeType.WORKING_DAYS else _days_after(calendar, promised, 1))
    return ApologyDecision(True, new_due_at=new_due_at, issue_by=promised, late=now > promised)


def _apology_boundary(instance: WorkflowInstance) -> dt.datetime | None:
    """After an apology: from when the steps after the active one no longer fit before the new
    appointment (before an apology the active step's deadline is that instant)."""
    step = instance.current
    if not instance.apologies or step is None or instance.status not in _APOLOGY_STATUSES:
        return None
    promised, calendar = instance.promised_due_at, instance.calendar
    remaining = instance.definition.remaining_time(step.index + 1)
    if isinstance(remaining, dt.timedelta):
        return soon_from(promised, Decimal(remaining // dt.timedelta(minutes=1)) / 60, calendar)
    # Calendar days: the finish depends on the date only; find the first date that reaches it.
    day = promised.astimezone(calendar.tz).date() - dt.timedelta(days=remaining)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=calendar.tz)
    while finish_after(instance, midnight - dt.timedelta(days=1), step.index + 1) >= promised:
        midnight -= dt.timedelta(days=1)
    return midnight


# -- supplements --------------------------------------------------------------------------------


def supplement_expiry_due(instance: WorkflowInstance, now: dt.datetime) -> SupplementExpiry | None:
    """The procedure's rule to apply (with the ``supplement_expired`` action) when the applicant's
    supplement deadline has passed; None when there is nothing to do."""
    supplement = instance.open_supplement
    if supplement is None or supplement.expired or now < supplement.deadline:
        return None
    return instance.definition.supplement_expiry


def supplement_expired_reason(instance: WorkflowInstance) -> str:
    """Why a dossier stops when its supplement deadline passes (the stop notice says it)."""
    supplement = instance.open_supplement
    deadline = supplement.deadline.astimezone(instance.calendar.tz) if supplement else None
    when = f" trước {deadline:%H:%M ngày %d/%m/%Y}" if deadline else ""
    return f"Người nộp hồ sơ không bổ sung giấy tờ theo yêu cầu{when}."


# -- sweeps -------------------------------------------------------------------------------------


def next_check_at(instance: WorkflowInstance, now: dt.datetime,
                  soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> dt.datetime | None:
    """The next instant after ``now`` at which a sweep has something to look at; None when only an
    action can change anything (closed, or waiting for an applicant with no deadline left).

    Under status 5 it is the supplement deadline, even when already past (the expiry is then
    still to be applied, and applying it changes the answer)."""
    if instance.status is Status.SUPPLEMENT_REQUESTED:
        supplement = instance.open_supplement
        return None if supplement is None or supplement.expired else supplement.deadline
    step = instance.current
    if instance.status not in CLOCK_RUNNING or step is None:
        return None
    candidates: list[dt.datetime] = []
    for deadline in {step.deadline, instance.due_at, instance.promised_due_at}:
        candidates += [soon_from(deadline, soon_hours, instance.calendar), deadline]
    if (boundary := _apology_boundary(instance)) is not None:
        candidates.append(boundary)
    future = [c for c in candidates if c > now]
    return min(future) if future else None


# -- what a sweep does --------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    kind: FactKind  # DUE_SOON or OVERDUE
    scope: str  # "step" (the active step's deadline) or "dossier" (the appointment)
    deadline: dt.datetime


def alerts_due(instance: WorkflowInstance, now: dt.datetime,
               soon_hours: Decimal | int = DEFAULT_SOON_HOURS) -> list[Alert]:
    """The due-soon and overdue alerts the active step and the dossier call for now, whether or not
    they were raised before (:meth:`WorkflowInstance.raise_alert` drops the repeats). The dossier is
    judged against its due date, which an apology does not move: the new appointment it promises
    does not make a late dossier on time (Decision 766 counts it late all the same)."""
    step = instance.current
    if instance.status not in CLOCK_RUNNING or step is None:
        return []
    out = []
    for scope, deadline in (("step", step.deadline), ("dossier", instance.due_at)):
        state = sla_state(deadline, now, instance.calendar, soon_hours)
        if state is SlaState.DUE_SOON:
            out.append(Alert(FactKind.DUE_SOON, scope, deadline))
        elif state is SlaState.OVERDUE:
            out.append(Alert(FactKind.OVERDUE, scope, deadline))
    return out


APOLOGY_REASON = ("Hồ sơ chưa được giải quyết đúng hạn: bước {step} đã quá hạn xử lý. Cơ quan giải quyết xin "
                  "lỗi và hẹn lại ngày trả kết quả.")


def apology_reason(instance: WorkflowInstance) -> str:
    step = instance.current
    return APOLOGY_REASON.format(step=f"'{step.title}' ({step.unit})" if step else "")
