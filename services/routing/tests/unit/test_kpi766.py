"""Decision 766 classification: by date in Asia/Ho_Chi_Minh, per period, incrementally countable."""

from __future__ import annotations

import datetime as dt

import pytest

from motcua.errors import InvalidArgument
from motcua.worktime import VN_TZ
from routing.domain.actions import INTAKE, Complete, RequestSupplement, Withdrawn
from routing.domain.kpi766 import Channel, DossierSnapshot, Kpi, Period, classify, count, delta, rates, snapshot_of
from routing.domain.status import Status

OCTOBER = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
K = Kpi


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def dossier(received=at(2026, 10, 5, 9, 0), due=at(2026, 10, 27, 16, 0), status=Status.PROCESSING, finished=None,
            returned=None, paused=False, channel="online") -> DossierSnapshot:
    return DossierSnapshot(channel=channel, received_at=received, due_at=due, status=status, finished_at=finished,
                           returned_at=returned, paused=paused)


@pytest.mark.parametrize(("snapshot", "expected"), [
    # finished: judged by the date, not the time of day
    (dossier(status=Status.RESULT_READY, finished=at(2026, 10, 27, 16, 59)), {K.RECEIVED_ONLINE, K.FINISHED_ON_TIME}),
    (dossier(status=Status.RESULT_READY, finished=at(2026, 10, 27, 7, 1)), {K.RECEIVED_ONLINE, K.FINISHED_ON_TIME}),
    (dossier(status=Status.RESULT_READY, finished=at(2026, 10, 28, 7, 1)), {K.RECEIVED_ONLINE, K.FINISHED_LATE}),
    (dossier(status=Status.RESULT_READY, finished=at(2026, 10, 26, 16, 0)), {K.RECEIVED_ONLINE, K.FINISHED_EARLY}),
    # UTC instants read as Vietnamese dates: 16:30Z on 27/10 is 23:30 that day, 17:30Z is 00:30 the next
    (dossier(status=Status.RESULT_READY, finished=utc(2026, 10, 27, 16, 30)), {K.RECEIVED_ONLINE, K.FINISHED_ON_TIME}),
    (dossier(status=Status.RESULT_READY, finished=utc(2026, 10, 27, 17, 30)), {K.RECEIVED_ONLINE, K.FINISHED_LATE}),
    (dossier(received=utc(2026, 9, 30, 17, 30), status=Status.RESULT_READY, finished=at(2026, 10, 2, 9, 0)),
     {K.RECEIVED_ONLINE, K.FINISHED_EARLY}),  # received 1/10 00:30 in Vietnam: this period's
    # stopped after examination counts as finished; returned in the period too
    (dossier(status=Status.STOPPED, finished=at(2026, 10, 12, 9, 0), channel="desk"),
     {K.RECEIVED_DESK, K.FINISHED_EARLY}),
    (dossier(status=Status.RETURNED, finished=at(2026, 10, 27, 9, 0), returned=at(2026, 10, 29, 9, 0),
             channel="post"), {K.RECEIVED_POST, K.FINISHED_ON_TIME, K.RETURNED}),
    # open at the end of the period: overdue once the due date is behind, not on the due date itself
    (dossier(due=at(2026, 11, 5, 16, 0)), {K.RECEIVED_ONLINE, K.IN_PROCESS_ON_TIME}),
    (dossier(due=at(2026, 10, 31, 16, 0)), {K.RECEIVED_ONLINE, K.IN_PROCESS_ON_TIME}),
    (dossier(due=at(2026, 10, 30, 16, 0)), {K.RECEIVED_ONLINE, K.IN_PROCESS_OVERDUE}),
    (dossier(status=Status.RESULT_READY, finished=at(2026, 11, 3, 9, 0)), {K.RECEIVED_ONLINE, K.IN_PROCESS_OVERDUE}),
    (dossier(status=Status.SUPPLEMENT_REQUESTED, paused=True, due=at(2026, 10, 20, 16, 0)),
     {K.RECEIVED_ONLINE, K.PAUSED_OVERDUE}),
    (dossier(status=Status.PAYMENT_REQUESTED, paused=True, due=at(2026, 11, 5, 16, 0)),
     {K.RECEIVED_ONLINE, K.PAUSED_ON_TIME}),
    # carried over from before the period
    (dossier(received=at(2026, 9, 20, 9, 0), due=at(2026, 11, 5, 16, 0)), {K.CARRIED_OVER, K.IN_PROCESS_ON_TIME}),
    (dossier(received=at(2026, 9, 20, 9, 0), due=at(2026, 10, 15, 16, 0), status=Status.RESULT_READY,
             finished=at(2026, 10, 16, 8, 0)), {K.CARRIED_OVER, K.FINISHED_LATE}),
    (dossier(received=at(2026, 9, 20, 9, 0), status=Status.RETURNED, finished=at(2026, 9, 25, 9, 0),
             returned=at(2026, 10, 2, 9, 0)), {K.RETURNED}),
    (dossier(received=at(2026, 9, 20, 9, 0), status=Status.RESULT_READY, finished=at(2026, 9, 30, 16, 0)), set()),
    # withdrawn: neither finished nor in process
    (dossier(status=Status.WITHDRAWN, finished=at(2026, 10, 10, 9, 0), channel="desk"),
     {K.RECEIVED_DESK, K.WITHDRAWN}),
    # after the period
    (dossier(received=at(2026, 11, 2, 9, 0)), set()),
])
def test_a_dossier_is_classified_by_date(snapshot, expected):
    assert classify(snapshot, OCTOBER) == frozenset(expected)


def test_a_running_period_is_judged_as_of_today():
    snapshot = dossier(due=at(2026, 10, 20, 16, 0))
    assert classify(snapshot, OCTOBER, today=dt.date(2026, 10, 20)) == {K.RECEIVED_ONLINE, K.IN_PROCESS_ON_TIME}
    assert classify(snapshot, OCTOBER, today=dt.date(2026, 10, 21)) == {K.RECEIVED_ONLINE, K.IN_PROCESS_OVERDUE}
    assert classify(dossier(received=at(2026, 10, 25, 9, 0)), OCTOBER, today=dt.date(2026, 10, 21)) == set()


def test_a_period_yet_to_begin_counts_nothing():
    november = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert classify(dossier(), november, today=dt.date(2026, 10, 21)) == set()
    assert classify(dossier(), november, today=dt.date(2026, 11, 1)) == {K.CARRIED_OVER, K.IN_PROCESS_OVERDUE}


def test_counters_follow_a_dossier_incrementally():
    before = dossier(due=at(2026, 11, 5, 16, 0))
    after = dossier(due=at(2026, 11, 5, 16, 0), status=Status.RESULT_READY, finished=at(2026, 10, 27, 9, 0))
    assert delta(before, after, OCTOBER) == {K.IN_PROCESS_ON_TIME: -1, K.FINISHED_EARLY: 1}
    assert delta(None, before, OCTOBER) == {K.RECEIVED_ONLINE: 1, K.IN_PROCESS_ON_TIME: 1}
    assert delta(after, after, OCTOBER) == {}
    counts = count([before, after, dossier(channel="desk", status=Status.RESULT_READY,
                                           finished=at(2026, 10, 28, 9, 0))], OCTOBER)
    assert counts[K.RECEIVED_ONLINE] == 2 and counts[K.RECEIVED_DESK] == 1
    assert rates(counts) == {"received_online": 66.67, "finished_early": 50.0, "finished_on_time": 0.0,
                             "finished_late": 50.0, "in_process_overdue": 0.0, "paused_overdue": None}


def test_a_workflow_instance_gives_its_snapshot(open_social, people):
    instance = open_social(received_at=at(2026, 10, 5, 9, 0))  # due Wed 28/10 09:00
    today = dt.date(2026, 10, 6)
    assert classify(snapshot_of(instance, "online"), OCTOBER, today) == {K.RECEIVED_ONLINE, K.IN_PROCESS_ON_TIME}
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 10, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2026, 11, 30, 17, 0)), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 11, 0))
    assert classify(snapshot_of(instance, Channel.DESK), OCTOBER, today) == {K.RECEIVED_DESK, K.PAUSED_ON_TIME}
    assert classify(snapshot_of(instance, Channel.DESK), OCTOBER) == {K.RECEIVED_DESK, K.PAUSED_OVERDUE}
    instance.apply(Withdrawn(), by=INTAKE, now=at(2026, 11, 2, 9, 0))
    assert snapshot_of(instance, "desk").finished_at == at(2026, 11, 2, 9, 0)
    assert classify(snapshot_of(instance, "desk"), OCTOBER) == {K.RECEIVED_DESK, K.IN_PROCESS_OVERDUE}


@pytest.mark.parametrize(("make", "field"), [
    (lambda: dossier(status=Status.RESULT_READY), "finished_at"),
    (lambda: dossier(status=Status.RETURNED, finished=at(2026, 10, 9, 9, 0)), "returned_at"),
    (lambda: dossier(received=dt.datetime(2026, 10, 5, 9, 0)), "received_at"),
    (lambda: dossier(channel="fax"), "channel"),
    (lambda: dossier(status=3), "status"),
    (lambda: Period(dt.date(2026, 10, 31), dt.date(2026, 10, 1)), "period.end"),
])
def test_bad_snapshots_are_refused(make, field):
    with pytest.raises(InvalidArgument) as caught:
        make()
    assert caught.value.field == field


@pytest.mark.parametrize(("snapshot", "finish", "state"), [
    (dossier(), None, "in_process"),
    (dossier(paused=True, status=Status.SUPPLEMENT_REQUESTED), None, "paused"),
    (dossier(status=Status.RESULT_READY, finished=at(2026, 10, 27, 16, 59)), "on_time", "ended"),
    (dossier(status=Status.RESULT_READY, finished=at(2026, 10, 26, 16, 0)), "early", "ended"),
    (dossier(status=Status.STOPPED, finished=at(2026, 10, 28, 7, 1)), "late", "ended"),
    (dossier(status=Status.RETURNED, finished=at(2026, 10, 20, 9, 0), returned=at(2026, 11, 2, 9, 0)), "early",
     "ended"),
    (dossier(status=Status.WITHDRAWN, finished=at(2026, 10, 30, 9, 0)), "withdrawn", "ended"),
])
def test_finish_class_and_open_state_agree_with_the_classification(snapshot, finish, state):
    from routing.domain.kpi766 import FINISH_KPIS, finish_class, open_state

    assert (finish_class(snapshot), open_state(snapshot)) == (finish, state)
    if finish is not None:  # what the statistics count by index is what classify says
        assert FINISH_KPIS[finish] in classify(snapshot, OCTOBER)
