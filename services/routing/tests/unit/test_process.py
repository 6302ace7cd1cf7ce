"""The process definition: its JSON shape, its validation, and the step deadlines it implies."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motcua.errors import InvalidArgument
from motcua.worktime import VN_TZ
from routing.domain.process import ProcessDefinition, Role, SupplementExpiry, SupplementPolicy, TimeType

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


def simple(shares: list[float], **extra) -> dict:
    roles = ["receive", *["review"] * (len(shares) - 2), "return"]
    return {"steps": [{"role": r, "unit": "xa-a", "unit_id": "000.01.06.H56", "level": "commune", "share": s}
                      for r, s in zip(roles, shares, strict=True)],
            "time_type": "working_days", "duration_hours": 24, **extra}


# -- JSON ---------------------------------------------------------------------------------------


def test_the_definition_round_trips_through_plain_json(social):
    data = json.loads(json.dumps(social.to_dict()))
    assert ProcessDefinition.from_dict(data) == social
    assert data["steps"][1] == {"role": "review", "unit": "xa-dong-tien", "unit_id": "000.01.06.H56",
                                "level": "commune", "share": 0.35, "name": "Hội đồng xét duyệt cấp xã",
                                "forward": True}
    assert data["time_type"] == "working_days" and data["duration_hours"] == 136 and data["duration_days"] is None
    assert data["supplement_policy"] == "pause" and data["supplement_expiry"] == "stop"
    assert data["transfer_targets"][0] == {"unit": "so-ldtbxh", "unit_id": "000.00.16.H56", "level": "province"}


def test_defaults_and_a_calendar_day_definition():
    d = ProcessDefinition.from_dict(simple([0.2, 0.8], time_type="calendar_days", duration_hours=None,
                                           duration_days=25, supplement_policy="restart",
                                           supplement_expiry="keep_waiting"))
    assert d.time_type is TimeType.CALENDAR_DAYS and d.duration_days == 25
    assert d.supplement_policy is SupplementPolicy.RESTART and d.supplement_expiry is SupplementExpiry.KEEP_WAITING
    assert ProcessDefinition.from_dict(d.to_dict()) == d
    assert ProcessDefinition.from_dict(simple([0.5, 0.5])).transfer_targets == ()


def test_half_days_and_exact_shares_survive_the_round_trip():
    d = ProcessDefinition.from_dict(simple([0.05, 0.35, 0.3, 0.1, 0.1, 0.05, 0.05], duration_hours=4.5 * 8 / 9))
    assert d.duration_hours == Decimal("4")
    assert [s.share for s in d.steps][:2] == [Decimal("0.05"), Decimal("0.35")]
    assert ProcessDefinition.from_dict(json.loads(json.dumps(d.to_dict()))) == d


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d.pop("steps"), "process.steps", "list"),
    (lambda d: d.update(steps=[]), "process.steps", "one or more"),
    (lambda d: d["steps"][1].update(role="decide"), "process.steps[1].role", "not one of"),
    (lambda d: d["steps"][0].pop("unit"), "process.steps[0].unit", "required"),
    (lambda d: d["steps"][0].update(unit_id="  "), "process.steps[0].unit_id", "blank"),
    (lambda d: d["steps"][0].update(level="ward"), "process.steps[0].level", "not one of"),
    (lambda d: d["steps"][0].pop("share"), "process.steps[0].share", "required"),
    (lambda d: d["steps"][0].update(share="a lot"), "process.steps[0].share", "not a number"),
    (lambda d: d["steps"][0].update(share=0), "process.steps[0].share", "fraction"),
    (lambda d: d["steps"][0].update(share=0.3), "process.steps", "add up to"),
    (lambda d: d["steps"][0].update(forward="yes"), "process.steps[0].forward", "true or false"),
    (lambda d: d["steps"][2].update(role="review"), "process.steps[2].role", "last step"),
    (lambda d: d["steps"][1].update(role="seal"), "process.steps[1].role", "after a 'sign'"),
    (lambda d: d.update(time_type="hours"), "process.time_type", "not one of"),
    (lambda d: d.pop("duration_hours"), "process.duration_hours", "required"),
    (lambda d: d.update(duration_hours=-8), "process.duration_hours", "more than 0"),
    (lambda d: d.update(duration_days=3), "process.duration_days", "only for calendar_days"),
    (lambda d: d.update(time_type="calendar_days", duration_hours=None, duration_days=2.5),
     "process.duration_days", "whole number"),
    (lambda d: d.update(supplement_policy="forget"), "process.supplement_policy", "not one of"),
    (lambda d: d.update(supplement_expiry="refuse"), "process.supplement_expiry", "not one of"),
    (lambda d: d.update(transfer_targets={"unit": "x"}), "process.transfer_targets", "list"),
    (lambda d: d.update(transfer_targets=[{"unit": "so", "unit_id": "1", "level": "nation"}]),
     "process.transfer_targets[0].level", "not one of"),
    (lambda d: d.update(transfer_targets=[{"unit": "so", "unit_id": "1", "level": "province"}] * 2),
     "process.transfer_targets", "twice"),
])
def test_a_malformed_definition_is_refused_naming_the_field(change, field, words):
    data = simple([0.25, 0.5, 0.25])
    change(data)
    with pytest.raises(InvalidArgument) as caught:
        ProcessDefinition.from_dict(data)
    assert caught.value.field == field
    assert words in caught.value.reason


def test_a_definition_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidArgument, match="process: must be an object"):
        ProcessDefinition.from_dict(["steps"])


# -- deadlines, computed by hand ------------------------------------------------------------------


def test_step_deadlines_of_17_working_days_received_on_a_friday_afternoon(social, calendar):
    # 17 working days = 136 h, received Friday 2/10/2026 16:00 (no holiday until 24/11). Working
    # hours 07:00–11:30 and 13:30–17:00 (8 h a day); Friday gives 1 h, then 8 h a working day.
    #  5 % =   6.8 h =   6 h 48: Fri 1 h, Mon 5/10 4.5 h to 11:30, 1 h 18 from 13:30 → Mon 5/10 14:48
    # 40 % =  54.4 h =  54 h 24: Fri 1 h + 6 days (Mon 5 … Mon 12) 48 h + 5 h 24: Tue 13/10 4.5 h,
    #                             54 min from 13:30                                → Tue 13/10 14:24
    # 70 % =  95.2 h =  95 h 12: 1 + 11 days (5–9, 12–16, 19) 88 + 6 h 12: Tue 20/10 13:30 + 1:42
    #                                                                              → Tue 20/10 15:12
    # 80 % = 108.8 h = 108 h 48: 1 + 13 days (… 21) 104 + 3 h 48: Thu 22/10 07:00 + 3:48 → 10:48
    # 90 % = 122.4 h = 122 h 24: 1 + 15 days (… 23) 120 + 1 h 24: Mon 26/10 07:00 + 1:24 → 08:24
    # 95 % = 129.2 h = 129 h 12: 1 + 16 days (… 26) 128 + 12 min: Tue 27/10 07:12
    # 100 % = 136 h: 1 + 16 days + 7 h: Tue 27/10 4.5 h, 2.5 h from 13:30  → Tue 27/10 16:00 = due
    due = calendar.add_working_days(at(2026, 10, 2, 16, 0), 17)
    assert due == at(2026, 10, 27, 16, 0)
    assert social.deadlines(at(2026, 10, 2, 16, 0), due, calendar) == [
        at(2026, 10, 5, 14, 48), at(2026, 10, 13, 14, 24), at(2026, 10, 20, 15, 12), at(2026, 10, 22, 10, 48),
        at(2026, 10, 26, 8, 24), at(2026, 10, 27, 7, 12), at(2026, 10, 27, 16, 0)]


def test_step_deadlines_skip_tet_2027(calendar):
    # Tết Đinh Mùi: off Thu 4/2 – Wed 10/2/2027 (with the weekend). 3 working days = 24 h from
    # Wed 3/2 09:00, shares 25/50/25 %:
    # 6 h: Wed 09:00–11:30 (2.5) + 13:30–17:00 (3.5) → Wed 3/2 17:00 (a due time stays at a session end)
    # 18 h: 6 + Thu 11/2 8 h = 14 + 4 h: Fri 12/2 07:00 + 4 h → 11:00
    # 24 h: 14 + Fri 12/2 8 h = 22 + 2 h: Mon 15/2 07:00 + 2 h → 09:00
    d = ProcessDefinition.from_dict(simple([0.25, 0.5, 0.25]))
    received = at(2027, 2, 3, 9, 0)
    due = d.due_from(received, calendar)
    assert due == at(2027, 2, 15, 9, 0)
    assert d.deadlines(received, due, calendar) == [at(2027, 2, 3, 17, 0), at(2027, 2, 12, 11, 0), due]


def test_calendar_day_deadlines_around_30_4_and_1_5(calendar):
    # 10 calendar days from Tue 20/4/2027 10:00, shares 40/50/10 %: day counts 4, 9, 10.
    # 20 + 4 = Sat 24/4 (day off) → Mon 26/4 17:00; 20 + 9 = Thu 29/4 17:00;
    # 20 + 10 = Fri 30/4 (Liberation Day) → Sat 1/5 (Labour Day) → Sun → Mon 3/5 (Labour Day
    # observed) → Tue 4/5/2027 17:00.
    d = ProcessDefinition.from_dict(simple([0.4, 0.5, 0.1], time_type="calendar_days", duration_hours=None,
                                           duration_days=10))
    received = at(2027, 4, 20, 10, 0)
    due = d.due_from(received, calendar)
    assert due == at(2027, 5, 4, 17, 0)
    assert d.deadlines(received, due, calendar) == [at(2027, 4, 26, 17, 0), at(2027, 4, 29, 17, 0), due]


def test_no_step_is_due_after_the_appointment_intake_gave(social, calendar):
    received = at(2026, 10, 2, 16, 0)
    early_due = at(2026, 10, 13, 9, 0)  # intake's appointment, earlier than the shares would give
    deadlines = social.deadlines(received, early_due, calendar)
    assert deadlines[0] == at(2026, 10, 5, 14, 48)
    assert deadlines[1:] == [early_due] * 6


def test_remaining_time_is_the_shares_left(social):
    assert social.remaining_time(0) == dt.timedelta(hours=136)
    assert social.remaining_time(4) == dt.timedelta(hours=136 * 0.2)  # sign, seal, return: 27 h 12
    cal_days = ProcessDefinition.from_dict(simple([0.4, 0.5, 0.1], time_type="calendar_days",
                                                  duration_hours=None, duration_days=10))
    assert cal_days.remaining_time(2) == 1
    assert [s.role for s in social.steps][-1] is Role.RETURN


# -- properties ---------------------------------------------------------------------------------

INSTANTS = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31)).map(
    lambda t: t.replace(second=0, microsecond=0, tzinfo=VN_TZ))
WEIGHTS = st.lists(st.integers(1, 40), min_size=2, max_size=8)


def _weighted(weights: list[int], **extra) -> ProcessDefinition:
    total = sum(weights)
    return ProcessDefinition.from_dict(simple([str(Decimal(w) / total) for w in weights], **extra))


@PROPERTY
@given(INSTANTS, WEIGHTS, st.integers(1, 80))
def test_working_day_deadlines_are_ordered_and_end_at_the_due_date(calendar, received, weights, half_days):
    d = _weighted(weights, duration_hours=half_days * 4)
    due = d.due_from(received, calendar)
    deadlines = d.deadlines(received, due, calendar)
    assert deadlines == sorted(deadlines)
    assert deadlines[-1] == due and max(deadlines) == due
    assert deadlines[0] >= calendar.clock_start(received)
    assert all(calendar.is_working_day(t) for t in deadlines)


@PROPERTY
@given(INSTANTS, WEIGHTS, st.integers(1, 90))
def test_calendar_day_deadlines_are_ordered_and_end_at_the_due_date(calendar, received, weights, days):
    d = _weighted(weights, time_type="calendar_days", duration_hours=None, duration_days=days)
    due = d.due_from(received, calendar)
    deadlines = d.deadlines(received, due, calendar)
    assert deadlines == sorted(deadlines)
    assert deadlines[-1] == due
    assert all(calendar.is_working_day(t) and t.time() == dt.time(17, 0) for t in deadlines)
