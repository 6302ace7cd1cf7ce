"""SLA helpers: due soon / overdue, the sweep's next check, the apology (form 04) and the supplement
deadline. The social process received Friday 2/10/2026 16:00 has step deadlines Mon 5/10 14:48,
Tue 13/10 14:24, Tue 20/10 15:12, Thu 22/10 10:48, Mon 26/10 08:24, Tue 27/10 07:12, due Tue 27/10
16:00 (test_process computes them by hand)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motcua.worktime import VN_TZ
from routing.domain.actions import (
    CLOCK,
    INTAKE,
    Apologize,
    Complete,
    RequestSupplement,
    SupplementExpired,
    SupplementReceived,
)
from routing.domain.process import ProcessDefinition, SupplementExpiry
from routing.domain.sla import (
    ApologyDecision,
    SlaState,
    apology_decision,
    dossier_sla,
    next_check_at,
    soon_from,
    step_sla,
    supplement_expiry_due,
)

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


# -- due soon -------------------------------------------------------------------------------------


def test_due_soon_starts_the_window_of_working_hours_before_the_deadline(calendar):
    # 8 h before Mon 5/10 14:48: Mon 07:00–11:30 and 13:30–14:48 are 5 h 48; 2 h 12 more before
    # Friday's 17:00 → Fri 2/10 14:48.
    assert soon_from(at(2026, 10, 5, 14, 48), 8, calendar) == at(2026, 10, 2, 14, 48)
    # 4 h before Tue 13/10 14:24: 54 min after 13:30, 3 h 06 before 11:30 → 08:24.
    assert soon_from(at(2026, 10, 13, 14, 24), 4, calendar) == at(2026, 10, 13, 8, 24)
    # A whole day's window before a close of business starts at the previous day's close.
    assert soon_from(at(2026, 10, 13, 17, 0), 8, calendar) == at(2026, 10, 12, 17, 0)
    # Over Tết 2027 (4–10/2 off): 8 h before Thu 11/2 09:00 = 2 h on Thursday + 6 h of Wed 3/2 → 09:00.
    assert soon_from(at(2027, 2, 11, 9, 0), 8, calendar) == at(2027, 2, 3, 9, 0)
    assert soon_from(at(2026, 10, 13, 14, 24), Decimal("0.5"), calendar) == at(2026, 10, 13, 13, 54)


def test_the_active_step_and_the_dossier_are_on_time_due_soon_or_overdue(open_social, calendar):
    instance = open_social()
    assert step_sla(instance, at(2026, 10, 2, 16, 0)) is SlaState.DUE_SOON  # 6 h 48 of work, 8 h window
    assert step_sla(instance, at(2026, 10, 2, 16, 0), soon_hours=4) is SlaState.ON_TIME
    assert step_sla(instance, at(2026, 10, 5, 8, 48), soon_hours=4) is SlaState.DUE_SOON
    assert step_sla(instance, at(2026, 10, 5, 14, 47)) is SlaState.DUE_SOON
    assert step_sla(instance, at(2026, 10, 5, 14, 48)) is SlaState.OVERDUE
    assert dossier_sla(instance, at(2026, 10, 5, 14, 48)) is SlaState.ON_TIME
    assert dossier_sla(instance, at(2026, 10, 26, 16, 0)) is SlaState.DUE_SOON
    assert dossier_sla(instance, at(2026, 10, 27, 16, 0)) is SlaState.OVERDUE


def test_no_sla_while_the_applicant_holds_the_dossier_or_once_closed(open_social, people):
    instance = open_social()
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2026, 10, 9, 17, 0)), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 9, 0))
    assert step_sla(instance, at(2026, 11, 30, 9, 0)) is None and dossier_sla(instance, at(2026, 11, 30, 9)) is None
    instance.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 9, 17, 0))
    assert step_sla(instance, at(2026, 11, 30, 9, 0)) is None
    assert next_check_at(instance, at(2026, 10, 9, 17, 0)) is None


# -- the sweep's next look ----------------------------------------------------------------------


def test_next_check_is_the_next_sla_boundary(open_social, people):
    instance = open_social()
    received = at(2026, 10, 2, 16, 0)
    assert next_check_at(instance, received) == at(2026, 10, 5, 14, 48)  # due soon already: the deadline
    assert next_check_at(instance, received, soon_hours=4) == at(2026, 10, 5, 8, 48)
    # overdue step: the dossier's own due-soon instant, one working day before Tue 27/10 16:00
    assert next_check_at(instance, at(2026, 10, 5, 14, 48)) == at(2026, 10, 26, 16, 0)
    assert next_check_at(instance, at(2026, 10, 27, 16, 0)) is None  # everything is behind: only actions
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 10, 0))
    assert next_check_at(instance, at(2026, 10, 5, 10, 0)) == at(2026, 10, 12, 14, 24)


def test_next_check_under_supplement_is_its_deadline_until_handled(open_social, people):
    instance = open_social(process=ProcessDefinition.from_dict(
        {**open_social().definition.to_dict(), "supplement_expiry": "keep_waiting"}))
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2026, 10, 9, 17, 0)), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 9, 0))
    assert next_check_at(instance, at(2026, 10, 5, 9, 0)) == at(2026, 10, 9, 17, 0)
    assert next_check_at(instance, at(2026, 10, 12, 9, 0)) == at(2026, 10, 9, 17, 0)  # past, still to apply
    assert supplement_expiry_due(instance, at(2026, 10, 9, 16, 59)) is None
    assert supplement_expiry_due(instance, at(2026, 10, 9, 17, 0)) is SupplementExpiry.KEEP_WAITING
    instance.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 12, 9, 0))
    assert supplement_expiry_due(instance, at(2026, 10, 12, 9, 0)) is None
    assert next_check_at(instance, at(2026, 10, 12, 9, 0)) is None


def test_supplement_expiry_under_the_default_policy_stops(open_social, people):
    instance = open_social()
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2026, 10, 9, 17, 0)), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 9, 0))
    assert supplement_expiry_due(instance, at(2026, 10, 10, 8, 0)) is SupplementExpiry.STOP
    instance.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 10, 8, 0))
    assert supplement_expiry_due(instance, at(2026, 10, 10, 8, 0)) is None


# -- form 04 --------------------------------------------------------------------------------------


def test_an_apology_is_needed_from_the_active_steps_deadline_on(open_social):
    instance = open_social()
    assert apology_decision(instance, at(2026, 10, 5, 14, 47)) == ApologyDecision(False,
                                                                                   issue_by=at(2026, 10, 27, 16, 0))
    # At its deadline the step is overdue: the later steps' time now ends at the due date at best,
    # not before it. New appointment: 136 h from Mon 14:48 = the same time 17 working days on.
    assert apology_decision(instance, at(2026, 10, 5, 14, 48)) == ApologyDecision(
        True, new_due_at=at(2026, 10, 28, 14, 48), issue_by=at(2026, 10, 27, 16, 0))


def test_an_overdue_step_brings_an_apology_with_a_new_appointment(open_social):
    instance = open_social()
    # Mon 5/10 15:00, the receive step 12 min late: the later steps' 129 h 12 end 12 min after the
    # due date → apology. New appointment: the whole 136 h from Mon 15:00: Mon 2 h, then 16 days
    # (Tue 6/10 … Tue 27/10) 128 h, 6 h on Wed 28/10: 4.5 to 11:30, 1.5 from 13:30 → 15:00.
    decision = apology_decision(instance, at(2026, 10, 5, 15, 0))
    assert decision == ApologyDecision(True, new_due_at=at(2026, 10, 28, 15, 0), issue_by=at(2026, 10, 27, 16, 0),
                                       late=False)
    instance.apply(Apologize(new_due_at=decision.new_due_at, reason="chậm tiếp nhận"), by=CLOCK,
                   now=at(2026, 10, 5, 15, 0))
    assert apology_decision(instance, at(2026, 10, 5, 15, 0)).needed is False  # the new date holds
    late = apology_decision(open_social(), at(2026, 10, 28, 9, 0))
    assert late.needed and late.late and late.issue_by == at(2026, 10, 27, 16, 0)


def test_no_apology_while_the_applicant_holds_the_dossier(open_social, people):
    instance = open_social()
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2026, 10, 30, 17, 0)), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 9, 0))
    assert apology_decision(instance, at(2026, 10, 29, 9, 0)) == ApologyDecision(False)
    instance.apply(SupplementReceived(), by=INTAKE,
                   now=at(2026, 10, 6, 9, 0))
    assert apology_decision(instance, at(2026, 10, 6, 9, 0)).needed is False


# -- properties ---------------------------------------------------------------------------------

WORKING_DEADLINES = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31)).map(
    lambda t: t.replace(second=0, microsecond=0, tzinfo=VN_TZ))


@PROPERTY
@given(WORKING_DEADLINES, st.integers(1, 80))
def test_soon_from_leaves_exactly_the_window(calendar, deadline, half_hours):
    hours = Decimal(half_hours) / 2
    start = soon_from(deadline, hours, calendar)
    assert start <= deadline
    left = calendar.working_time_between(start, deadline)
    assert left == dt.timedelta(hours=float(hours))
    # and nothing earlier leaves as little: a minute before (in working time) leaves more
    assert calendar.working_time_between(start - dt.timedelta(minutes=1), deadline) > left or \
        not calendar.is_working_day(start - dt.timedelta(minutes=1)) or \
        calendar.clock_start(start - dt.timedelta(minutes=1)) >= start


@PROPERTY
@given(st.integers(0, 60 * 24 * 40), st.integers(0, 60 * 24 * 40), st.integers(1, 16), st.booleans(),
       st.sampled_from(["working_days", "calendar_days"]))
def test_nothing_a_sweep_sees_changes_before_the_next_check(open_social, calendar, now_min, probe_min, window,
                                                           apologized, time_type):
    process = open_social().definition.to_dict()
    if time_type == "calendar_days":
        process.update(time_type=time_type, duration_hours=None, duration_days=25)
    instance = open_social(process=ProcessDefinition.from_dict(process))
    if apologized:  # the receive step is late: a new appointment was promised 12 minutes after its deadline
        late = instance.steps[0].deadline + dt.timedelta(minutes=12)
        decision = apology_decision(instance, late)
        instance.apply(Apologize(new_due_at=decision.new_due_at, reason="r"), by=CLOCK, now=late)
    now = at(2026, 10, 2, 16, 0) + dt.timedelta(minutes=now_min)
    upcoming = next_check_at(instance, now, window)
    probe = now + dt.timedelta(minutes=probe_min)
    assert upcoming is None or upcoming > now
    if upcoming is not None and probe >= upcoming:
        return
    assert step_sla(instance, probe, window) is step_sla(instance, now, window)
    assert dossier_sla(instance, probe, window) is dossier_sla(instance, now, window)
    assert apology_decision(instance, probe).needed is apology_decision(instance, now).needed
