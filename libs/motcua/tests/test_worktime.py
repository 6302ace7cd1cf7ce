"""The working-time calendar (motcua.worktime): invariants as properties, then hand-computed cases.

Hand-computed cases use the shipped Vietnam calendar (holidays package + worktime_overrides.yaml)
and the default hours 07:00–11:30, 13:30–17:00 (4.5 h + 3.5 h = 8 h a day), Monday–Friday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motcua.errors import InvalidArgument
from motcua.worktime import VN_TZ, Calendar, WorkingHours, load_overrides, vietnam_calendar

CAL = vietnam_calendar()


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


# -- strategies ---------------------------------------------------------------------------------

DAYS = st.dates(date(2023, 12, 20), date(2026, 12, 20))  # covers every override and Tết 2024–2026
# Instants on a quarter-hour grid hit the interesting boundaries (07:00, 11:30, 13:30, 17:00)
# often; arbitrary instants in other zones check the conversion.
ON_GRID = st.builds(
    lambda d, quarter: datetime.combine(d, time(), VN_TZ) + timedelta(minutes=15 * quarter),
    DAYS,
    st.integers(0, 4 * 24 - 1),
)
ANYWHERE = st.datetimes(
    datetime(2023, 12, 20),
    datetime(2026, 12, 20),
    timezones=st.sampled_from([VN_TZ, UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]),
)
INSTANTS = st.one_of(ON_GRID, ANYWHERE)
# Half-hour multiples up to 30 working days: exact in Decimal and in timedelta.
HOURS = st.integers(0, 2 * 8 * 30).map(lambda k: Decimal(k) / 2)
POSITIVE_HOURS = HOURS.filter(bool)

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def in_working_time(t: datetime) -> bool:
    """On a working day, within a session, both ends included (a due may sit at 11:30 or 17:00)."""
    return CAL.is_working_day(t.date()) and any(s <= t.time() <= e for s, e in CAL.hours.sessions)


# -- invariants ---------------------------------------------------------------------------------


@PROPERTY
@given(INSTANTS, HOURS)
def test_due_is_after_the_start_on_a_working_day_within_working_hours(start, hours):
    due = CAL.add_working_hours(start, hours)
    assert due >= start
    assert due.tzinfo is VN_TZ
    assert in_working_time(due)


@PROPERTY
@given(INSTANTS)
def test_clock_start_is_idempotent_inside_a_session_and_costs_no_working_time(received):
    start = CAL.clock_start(received)
    assert start >= received
    assert CAL.clock_start(start) == start
    assert in_working_time(start) and start.time() not in {e for _, e in CAL.hours.sessions}
    assert CAL.working_hours_between(received, start) == 0


@PROPERTY
@given(INSTANTS, HOURS, POSITIVE_HOURS)
def test_adding_in_two_steps_equals_adding_the_sum(start, a, b):
    # Holds for a >= 0 and b > 0 with exact durations (here half-hour multiples; any whole number
    # of microseconds would do). It fails for b = 0 exactly when add(start, a) is a session end,
    # because add(., 0) is the clock start, which moves a session end to the next session start
    # (see test_composition_with_zero_at_a_session_end).
    assert CAL.add_working_hours(CAL.add_working_hours(start, a), b) == CAL.add_working_hours(start, a + b)


@PROPERTY
@given(INSTANTS, INSTANTS, HOURS)
def test_due_is_monotonic_in_the_start(s1, s2, hours):
    s1, s2 = sorted((s1, s2))
    assert CAL.add_working_hours(s1, hours) <= CAL.add_working_hours(s2, hours)


@PROPERTY
@given(INSTANTS, HOURS)
def test_working_hours_between_inverts_add(start, hours):
    due = CAL.add_working_hours(start, hours)
    assert CAL.working_hours_between(start, due) == hours
    assert CAL.working_hours_between(due, start) == -hours


@PROPERTY
@given(INSTANTS, INSTANTS, INSTANTS)
def test_working_hours_between_adds_up_and_never_exceeds_the_elapsed_time(a, b, c):
    # The pause of a supplement request is split at any instant (nights, lunch) without loss.
    # Exact on the timedelta; the Decimal hours of arbitrary instants are rounded (28 digits) but
    # add_working_hours turns them back into the same microsecond.
    a, b, c = sorted((a, b, c))
    ab, bc = CAL.working_time_between(a, b), CAL.working_time_between(b, c)
    assert ab + bc == CAL.working_time_between(a, c)
    assert timedelta() <= ab <= b - a
    hours = CAL.working_hours_between(a, b)
    assert CAL.add_working_hours(a, hours) == CAL.add_working_hours(a, ab)


@PROPERTY
@given(INSTANTS, st.integers(0, 60))
def test_calendar_days_end_on_the_first_working_day_from_the_target_at_closing_time(start, days):
    due = CAL.add_calendar_days(start, days)
    target = CAL.clock_start(start).date() + timedelta(days=days)
    assert CAL.is_working_day(due.date()) and due.time() == time(17)
    assert due.date() >= target
    assert not any(CAL.is_working_day(target + timedelta(n)) for n in range((due.date() - target).days))


def test_composition_with_zero_at_a_session_end():
    # Friday 14/3/2025 16:00 + 1 h = 17:00 the same day; adding 0 h more is the clock start,
    # Monday 07:00: the documented exception to the composition invariant.
    first = CAL.add_working_hours(vn(2025, 3, 14, 16), 1)
    assert first == vn(2025, 3, 14, 17)
    assert CAL.add_working_hours(first, 0) == vn(2025, 3, 17, 7)


# -- clock start and ordinary weeks (March 2025 has no holiday) ---------------------------------


@pytest.mark.parametrize(
    ("received", "start"),
    [
        (vn(2025, 3, 14, 17, 30), vn(2025, 3, 17, 7)),  # Friday after closing → Monday 07:00
        (vn(2025, 3, 14, 17), vn(2025, 3, 17, 7)),  # at 17:00 no working time is left that day
        (vn(2025, 3, 15, 10), vn(2025, 3, 17, 7)),  # Saturday → Monday 07:00
        (vn(2025, 3, 12, 12), vn(2025, 3, 12, 13, 30)),  # lunch → 13:30
        (vn(2025, 3, 12, 11, 30), vn(2025, 3, 12, 13, 30)),  # the morning session is over
        (vn(2025, 3, 12, 6), vn(2025, 3, 12, 7)),  # before opening → 07:00
        (vn(2025, 3, 12, 9, 17, 5), vn(2025, 3, 12, 9, 17, 5)),  # inside a session: unchanged
        (datetime(2025, 3, 12, 2, 0, tzinfo=UTC), vn(2025, 3, 12, 9)),  # 02:00 UTC = 09:00 in Hà Nội
    ],
)
def test_clock_start(received, start):
    assert CAL.clock_start(received) == start


def test_friday_afternoon_plus_two_hours_is_monday_morning():
    # Friday 14/3/2025 16:00: one hour until 17:00, the second hour Monday 07:00–08:00.
    assert CAL.add_working_hours(vn(2025, 3, 14, 16), 2) == vn(2025, 3, 17, 8)
    assert CAL.add_working_hours(vn(2025, 3, 14, 16), 2.0) == vn(2025, 3, 17, 8)  # floats too
    # The same instant given in UTC (09:00Z = 16:00+07); the answer is in Asia/Ho_Chi_Minh.
    due = CAL.add_working_hours(datetime(2025, 3, 14, 9, tzinfo=UTC), Decimal(2))
    assert due == vn(2025, 3, 17, 8) and due.tzinfo is VN_TZ


def test_due_at_a_session_end_stays_there():
    assert CAL.add_working_hours(vn(2025, 3, 14, 16), 1) == vn(2025, 3, 14, 17)
    assert CAL.add_working_hours(vn(2025, 3, 12, 10, 30), 1) == vn(2025, 3, 12, 11, 30)
    # Lunch is skipped: 11:00 + 1 h = 30 min before lunch + 30 min after it.
    assert CAL.add_working_hours(vn(2025, 3, 12, 11), 1) == vn(2025, 3, 12, 14)
    # A half day received at the opening ends at 11:00.
    assert CAL.add_working_days(vn(2025, 3, 12, 7), Decimal("0.5")) == vn(2025, 3, 12, 11)


# -- holidays -----------------------------------------------------------------------------------


def test_tet_2025():
    # Off Saturday 25/1 to Sunday 2/2/2025. Received Friday 24/1 15:00, 1 working day (8 h):
    # 2 h on Friday (15:00–17:00), then Monday 3/2: 4.5 h in the morning, 1.5 h from 13:30 → 15:00.
    assert [CAL.is_working_day(date(2025, 1, d)) for d in (24, 27, 28, 29, 30, 31)] == [True] + [False] * 5
    assert CAL.add_working_days(vn(2025, 1, 24, 15), 1) == vn(2025, 2, 3, 15)
    assert CAL.working_hours_between(vn(2025, 1, 24, 15), vn(2025, 2, 3, 15)) == 8
    assert CAL.clock_start(vn(2025, 1, 29, 9)) == vn(2025, 2, 3, 7)  # received on Tết itself


def test_tet_2026():
    # Off Saturday 14/2 to Sunday 22/2/2026 (16–20/2 are the five Tết days). Received Friday 13/2
    # 09:00, 2 working days (16 h): 6 h on Friday (2.5 + 3.5), 8 h on Monday 23/2, 2 h on
    # Tuesday 24/2 → 09:00.
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)
    assert CAL.add_working_days(vn(2026, 2, 13, 9), 2) == vn(2026, 2, 24, 9)
    assert CAL.clock_start(vn(2026, 2, 18, 10)) == vn(2026, 2, 23, 7)


def test_30_april_and_1_may_2025_with_the_make_up_saturday():
    # Friday 2/5/2025 swapped with Saturday 26/4: off Wednesday 30/4 to Sunday 4/5.
    # Received Tuesday 29/4 14:00 + 8 h: 3 h on Tuesday, then Monday 5/5: 4.5 h + 0.5 h → 14:00.
    assert CAL.add_working_hours(vn(2025, 4, 29, 14), 8) == vn(2025, 5, 5, 14)
    # Saturday 26/4 is a working day: Friday 25/4 16:00 + 4 h = 1 h Friday + 3 h Saturday → 10:00.
    assert CAL.is_working_day(date(2025, 4, 26)) and not CAL.is_working_day(date(2025, 5, 2))
    assert CAL.add_working_hours(vn(2025, 4, 25, 16), 4) == vn(2025, 4, 26, 10)


def test_30_april_and_1_may_2026_and_hung_kings_observed():
    # Hùng Kings' day 2026 is Sunday 26/4, so Monday 27/4 is off; 30/4 and 1/5 are Thursday and
    # Friday (no swap). Received Friday 24/4 16:00 + 16 h: 1 h on Friday, 8 h on Tuesday 28/4,
    # 7 h on Wednesday 29/4 (4.5 h, then 2.5 h from 13:30) → 16:00.
    assert CAL.add_working_hours(vn(2026, 4, 24, 16), 16) == vn(2026, 4, 29, 16)
    # Wednesday 29/4 16:00 + 2 h: 1 h that day, then Monday 4/5 07:00–08:00.
    assert CAL.add_working_hours(vn(2026, 4, 29, 16), 2) == vn(2026, 5, 4, 8)


def test_national_day_2025():
    # Off Monday 1/9 and Tuesday 2/9/2025. Received Friday 29/8 17:30: the clock starts Wednesday
    # 3/9 07:00; half a day (4 h) ends at 11:00.
    assert CAL.clock_start(vn(2025, 8, 29, 17, 30)) == vn(2025, 9, 3, 7)
    assert CAL.add_working_hours(vn(2025, 8, 29, 17, 30), 4) == vn(2025, 9, 3, 11)


def test_national_day_2026_and_new_year_2026_swaps():
    # 2/9/2026 is a Wednesday: off 31/8 (swapped with Saturday 22/8), 1/9 and 2/9. Received
    # Friday 28/8 16:30 + 1 h: 30 min that day, 30 min on Thursday 3/9 → 07:30.
    assert CAL.add_working_hours(vn(2026, 8, 28, 16, 30), 1) == vn(2026, 9, 3, 7, 30)
    assert CAL.is_working_day(date(2026, 8, 22))
    # New Year 2026: Friday 2/1 off, swapped with Saturday 10/1.
    assert not CAL.is_working_day(date(2026, 1, 2)) and CAL.is_working_day(date(2026, 1, 10))
    assert CAL.next_working_day(date(2025, 12, 31)) == date(2026, 1, 5)


def test_a_15_working_day_procedure():
    # Received Monday 21/4/2025 09:00; 15 days = 120 h. Monday gives 6 h, leaving 114 h = 14 full
    # days + 2 h. Working days: 22, 23, 24, 25, 26 (make-up Saturday), 28, 29/4, then (30/4–4/5
    # off) 5, 6, 7, 8, 9, 12, 13/5 = 14 days; the last 2 h on Wednesday 14/5 → 09:00.
    assert CAL.add_working_days(vn(2025, 4, 21, 9), 15) == vn(2025, 5, 14, 9)


def test_calendar_day_procedures():
    # Received Wednesday 12/3/2025, 4 calendar days → Sunday 16/3 → Monday 17/3 at closing time.
    assert CAL.add_calendar_days(vn(2025, 3, 12, 10), 4) == vn(2025, 3, 17, 17)
    # Received Thursday 24/4/2025, 6 days → Wednesday 30/4, off until Sunday 4/5 → Monday 5/5.
    assert CAL.add_calendar_days(vn(2025, 4, 24, 10), 6) == vn(2025, 5, 5, 17)
    # Received Friday 14/3/2025 after closing: counted from Monday 17/3, + 3 → Thursday 20/3.
    assert CAL.add_calendar_days(vn(2025, 3, 14, 17, 30), 3) == vn(2025, 3, 20, 17)


def test_a_paused_calendar_day_due_date_moves_by_whole_days_and_never_onto_a_day_off():
    # Due Monday 17/3/2025 17:00; the applicant took 3 days → Thursday 20/3 at closing time.
    assert CAL.move_calendar_due(vn(2025, 3, 17, 17), 3) == vn(2025, 3, 20, 17)
    # Due Friday 25/4/2025; 5 days later is Wednesday 30/4, off until Sunday 4/5 → Monday 5/5.
    assert CAL.move_calendar_due(vn(2025, 4, 25, 17), 5) == vn(2025, 5, 5, 17)
    assert CAL.move_calendar_due(vn(2025, 3, 17, 17), 0) == vn(2025, 3, 17, 17)
    with pytest.raises(InvalidArgument):
        CAL.move_calendar_due(vn(2025, 3, 17, 17), -1)


# -- configuration and bad input ----------------------------------------------------------------


def test_a_unit_with_other_hours_and_saturday_mornings():
    hours = WorkingHours(sessions=((time(7, 30), time(11, 30)), (time(13), time(17))), weekdays={0, 1, 2, 3, 4, 5})
    cal = Calendar(hours, holidays_by_date={date(2025, 3, 17)})
    # Friday 14/3/2025 16:30 + 1 h: 30 min Friday, 30 min Saturday 15/3 from 07:30 → 08:00.
    assert cal.add_working_hours(vn(2025, 3, 14, 16, 30), 1) == vn(2025, 3, 15, 8)
    assert cal.next_working_day(date(2025, 3, 15)) == date(2025, 3, 18)  # Sunday, then the holiday


def test_overrides_file_is_consistent():
    working, off = load_overrides()
    assert {date(2024, 5, 4), date(2025, 4, 26), date(2026, 1, 10), date(2026, 8, 22)} <= working
    assert {date(2024, 4, 29), date(2025, 5, 2), date(2026, 1, 2), date(2026, 8, 31)} <= off
    assert all(d.weekday() == 5 for d in working)  # every make-up day so far is a Saturday


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: CAL.clock_start(datetime(2025, 3, 12, 9)), "received_at"),  # naive
        (lambda: CAL.add_working_hours(vn(2025, 3, 12, 9), -1), "hours"),
        (lambda: CAL.add_working_hours(vn(2025, 3, 12, 9), float("nan")), "hours"),
        (lambda: CAL.add_calendar_days(vn(2025, 3, 12, 9), 1.5), "days"),
        (lambda: WorkingHours(sessions=((time(13), time(17)), (time(7), time(11)))), "sessions"),
        (lambda: Calendar(extra_working_days=[date(2025, 1, 1)], extra_days_off=[date(2025, 1, 1)]), "extra_days_off"),
        (lambda: Calendar(WorkingHours(weekdays=set())).clock_start(vn(2025, 3, 12, 9)), "weekdays"),
    ],
)
def test_bad_input_is_refused_clearly(call, field):
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.field == field
