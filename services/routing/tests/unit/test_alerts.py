"""SLA alerts: the sweep's due-soon and overdue warnings, raised once per deadline, and their
public events. The social process received Fri 2/10/2026 16:00: receive step due Mon 5/10 14:48,
dossier due Tue 27/10 16:00 (test_process computes them by hand)."""

from __future__ import annotations

import datetime as dt

from motcua.events.v1 import events_pb2
from motcua.worktime import VN_TZ
from routing.application.instance_events import events_of
from routing.domain.actions import CLOCK, Apologize, Complete
from routing.domain.instance import FactKind
from routing.domain.sla import Alert, alerts_due


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


STEP_DUE = at(2026, 10, 5, 14, 48)
DOSSIER_DUE = at(2026, 10, 27, 16, 0)


def test_the_receive_step_is_due_soon_from_the_start(open_social):
    # 8 working hours before Mon 14:48: Mon 07:00–11:30 and 13:30–14:48 give 5 h 48, the other
    # 2 h 12 end Friday at 17:00 → due soon from Fri 14:48, before the dossier even arrived.
    instance = open_social()
    assert alerts_due(instance, at(2026, 10, 2, 16, 0)) == [Alert(FactKind.DUE_SOON, "step", STEP_DUE)]
    assert alerts_due(instance, at(2026, 10, 2, 16, 0), soon_hours=2) == []  # 2 h before: from Mon 12:48
    assert alerts_due(instance, at(2026, 10, 5, 12, 48), soon_hours=2) == [Alert(FactKind.DUE_SOON, "step", STEP_DUE)]


def test_overdue_from_the_deadline_on_for_the_step_and_the_dossier(open_social):
    instance = open_social()
    assert alerts_due(instance, STEP_DUE) == [Alert(FactKind.OVERDUE, "step", STEP_DUE)]
    # The dossier is due soon from Tue 27/10 08:00 (8 h before 16:00: 07:00–11:30, 13:30–16:00 is 7 h,
    # the last hour is Mon 26/10 16:00–17:00), overdue at 16:00.
    assert alerts_due(instance, at(2026, 10, 26, 16, 0)) == [Alert(FactKind.OVERDUE, "step", STEP_DUE),
                                                             Alert(FactKind.DUE_SOON, "dossier", DOSSIER_DUE)]
    assert alerts_due(instance, at(2026, 10, 26, 15, 59))[1:] == []
    assert alerts_due(instance, DOSSIER_DUE)[1:] == [Alert(FactKind.OVERDUE, "dossier", DOSSIER_DUE)]


def test_an_alert_is_raised_once_per_deadline(open_social, people):
    instance = open_social()
    instance.facts.clear()
    assert instance.raise_alert(FactKind.OVERDUE, "step", STEP_DUE, STEP_DUE) is True
    assert instance.raise_alert(FactKind.OVERDUE, "step", STEP_DUE, STEP_DUE + dt.timedelta(hours=1)) is False
    assert instance.raise_alert(FactKind.DUE_SOON, "step", STEP_DUE, STEP_DUE) is True  # another kind
    assert [f.kind for f in instance.facts] == [FactKind.OVERDUE, FactKind.DUE_SOON]
    # The next step has deadlines of its own: alerted afresh.
    instance.apply(Complete(), by=people.desk, now=STEP_DUE + dt.timedelta(hours=1))
    next_deadline = instance.current.deadline
    assert instance.raise_alert(FactKind.OVERDUE, "step", next_deadline, next_deadline) is True
    # and the alerts survive the round trip through the stored document
    again = type(instance).from_dict(instance.to_dict(), instance.calendar)
    assert again.raise_alert(FactKind.OVERDUE, "step", next_deadline, next_deadline) is False


def test_an_apology_does_not_make_a_late_dossier_on_time(open_social):
    instance = open_social()
    instance.apply(Apologize(new_due_at=at(2026, 10, 28, 15, 0), reason="chậm"), by=CLOCK, now=at(2026, 10, 5, 15, 0))
    assert Alert(FactKind.OVERDUE, "dossier", DOSSIER_DUE) in alerts_due(instance, DOSSIER_DUE)


def test_no_alert_while_the_applicant_holds_the_dossier_or_once_closed(open_social, people):
    from routing.domain.actions import INTAKE, RequestSupplement, Withdrawn

    instance = open_social()
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="thiếu", deadline=at(2026, 11, 30, 17, 0)), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 9, 0))
    assert alerts_due(instance, at(2026, 11, 20, 9, 0)) == []
    instance.apply(Withdrawn(reason="không cần"), by=INTAKE, now=at(2026, 10, 6, 9, 0))
    assert alerts_due(instance, at(2026, 11, 20, 9, 0)) == []
    assert instance.raise_alert(FactKind.OVERDUE, "dossier", DOSSIER_DUE, at(2026, 11, 20, 9, 0)) is False


def test_alerts_are_published_as_due_soon_and_overdue_events(open_social):
    instance = open_social()
    instance.facts.clear()
    instance.raise_alert(FactKind.DUE_SOON, "step", STEP_DUE, at(2026, 10, 2, 16, 0))
    instance.raise_alert(FactKind.OVERDUE, "dossier", DOSSIER_DUE, DOSSIER_DUE)
    soon, overdue = events_of(instance)
    assert (soon.name, overdue.name) == ("dossier.due_soon", "dossier.overdue")
    message = soon.decode(events_pb2.DossierDueSoon)
    assert (message.scope, message.step_index, message.unit, message.role, message.status) == (
        "step", 0, "xa-dong-tien", "receive", 4)
    assert message.deadline.ToDatetime(dt.UTC) == STEP_DUE
    assert overdue.decode(events_pb2.DossierOverdue).scope == "dossier"
