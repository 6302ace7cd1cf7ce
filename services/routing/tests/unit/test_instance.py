"""The workflow instance: opening, every action's effect, facts and timeline rows, supplements under
both clock policies, payments, signing, idempotency and the JSON round trip."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from motcua.worktime import VN_TZ
from routing.domain.actions import (
    CLOCK,
    INTAKE,
    SIGNING,
    Apologize,
    Approve,
    Claim,
    Complete,
    Forward,
    Official,
    RecordPayment,
    Refuse,
    RequestPayment,
    RequestSupplement,
    ReturnPrevious,
    ReturnResult,
    Signed,
    SigningFailed,
    SupplementExpired,
    SupplementReceived,
    Transfer,
    Withdrawn,
)
from routing.domain.instance import FactKind, StepState, TimelineRow, WorkflowInstance
from routing.domain.process import ProcessDefinition, SupplementExpiry, SupplementPolicy
from routing.domain.status import Status

PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
UNIT = ("xa-dong-tien", "000.01.06.H56", "commune")
DESK = Official("mc", "xa-dong-tien", frozenset({"receive", "return"}))
REVIEWER = Official("cc", "xa-dong-tien", frozenset({"review"}))


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


def kinds(instance: WorkflowInstance, since: int = 0) -> list[tuple[str, int | None]]:
    return [(f.kind.value, f.step_index) for f in instance.facts[since:]]


def two_days(**extra) -> ProcessDefinition:
    """receive 25 %, review 50 %, return 25 % of 2 working days (16 h), all at one commune."""
    unit, unit_id, level = UNIT
    return ProcessDefinition.from_dict({
        "steps": [{"role": r, "unit": unit, "unit_id": unit_id, "level": level, "share": s}
                  for r, s in (("receive", 0.25), ("review", 0.5), ("return", 0.25))],
        "time_type": "working_days", "duration_hours": 16, **extra})


def open_two_days(calendar, received_at: dt.datetime, **extra) -> WorkflowInstance:
    process = two_days(**extra)
    return WorkflowInstance.open(definition=process, dossier_id="d2", code="000.01.06.H56-261005-0001",
                                 receiving_unit="dong-son", area="dong-son", procedure_code="1.000001",
                                 received_at=received_at,
                                 due_at=process.due_from(received_at, calendar), now=received_at, calendar=calendar)


def to_step(instance: WorkflowInstance, people, index: int, now: dt.datetime) -> None:
    """Complete the social process's steps before ``index`` (all before signing)."""
    doers = [people.desk, people.commune_reviewer, people.district_reviewer, people.leader]
    while instance.current.index < index:
        instance.apply(Complete(), by=doers[instance.current.index], now=now)


# -- opening ------------------------------------------------------------------------------------


def test_opening_activates_the_first_step_with_every_deadline(open_social):
    instance = open_social()
    assert instance.status is Status.PROCESSING
    assert [s.state for s in instance.steps] == [StepState.ACTIVE] + [StepState.PENDING] * 6
    assert instance.steps[0].started_at == at(2026, 10, 2, 16, 0)
    assert instance.steps[1].deadline == at(2026, 10, 13, 14, 24)
    assert instance.steps[-1].deadline == instance.due_at == at(2026, 10, 27, 16, 0)
    assert kinds(instance) == [("assigned", 0)]
    row = instance.timeline[0]
    assert (row.action, row.status, row.step_index, row.unit, row.step_deadline) == (
        "opened", Status.PROCESSING, 0, "xa-dong-tien", at(2026, 10, 5, 14, 48))


@pytest.mark.parametrize(("change", "field"), [
    ({"code": " "}, "code"),
    ({"received_at": dt.datetime(2026, 10, 2, 16, 0)}, "received_at"),
    ({"due_at": "tomorrow"}, "due_at"),
    ({"due_at": at(2026, 10, 1, 9, 0)}, "due_at"),
])
def test_opening_refuses_bad_input_naming_the_field(social, calendar, change, field):
    args = {"definition": social, "dossier_id": "d1", "code": "c", "receiving_unit": "dong-son", "area": "dong-son",
            "procedure_code": "1.1",
            "received_at": at(2026, 10, 2, 16, 0), "due_at": at(2026, 10, 27, 16, 0), "now": at(2026, 10, 2, 16, 0),
            "calendar": calendar, **change}
    with pytest.raises(InvalidArgument) as caught:
        WorkflowInstance.open(**args)
    assert caught.value.field == field


# -- the whole way ------------------------------------------------------------------------------


def test_a_dossier_goes_from_the_commune_to_the_district_to_signing_and_back(open_social, people):
    instance = open_social()
    t = at(2026, 10, 5, 8, 0)
    assert instance.apply(Claim(), by=people.desk, now=t) is True
    assert instance.steps[0].actor == "mc-dong-tien"
    instance.apply(Complete(note="đủ hồ sơ"), by=people.desk, now=t)
    instance.apply(Complete(), by=people.commune_reviewer, now=t)
    instance.apply(Complete(), by=people.district_reviewer, now=t)
    instance.apply(Complete(), by=people.leader, now=t)
    assert instance.current.index == 4 and instance.status is Status.PROCESSING

    instance.apply(Approve(draft={"key": "routing/d1/abc"}), by=people.chairman, now=t)
    assert instance.pending_signing.signing_request_id == "d1:sign:1"
    assert instance.facts[-1].kind is FactKind.SIGNING_REQUESTED
    # the official who approved signs; the seal is the issuing unit's (the seal step's unit)
    assert instance.facts[-1].data == {"signing_request_id": "d1:sign:1", "draft": {"key": "routing/d1/abc"},
                                       "official_id": "ct-dong-son", "seal_unit": "huyen-dong-son",
                                       "seal_unit_id": "000.00.06.H56"}

    instance.apply(Signed(signing_request_id="d1:sign:1", signers=("Lê Văn Ba", "UBND huyện Đông Sơn"),
                          result={"key": "routing/d1/signed"}), by=SIGNING, now=t)
    assert instance.status is Status.RESULT_READY and instance.finished_at == t
    assert [s.actor for s in instance.steps[4:6]] == ["ct-dong-son", "UBND huyện Đông Sơn"]
    assert instance.current.index == 6 and instance.result == {"key": "routing/d1/signed"}

    instance.apply(ReturnResult(channel="desk", receiver="Nguyễn Thị Hoa"), by=people.desk, now=t)
    assert instance.status is Status.RETURNED and instance.closed_at == t
    assert instance.returned == {"channel": "desk", "receiver": "Nguyễn Thị Hoa"}
    assert instance.current is None and all(s.state is StepState.DONE for s in instance.steps)
    assert kinds(instance) == [
        ("assigned", 0), ("assigned", 0), ("step_completed", 0), ("assigned", 1), ("step_completed", 1),
        ("assigned", 2), ("step_completed", 2), ("assigned", 3), ("step_completed", 3), ("assigned", 4),
        ("signing_requested", 4), ("step_completed", 4), ("step_completed", 5), ("assigned", 6),
        ("result_ready", 6), ("step_completed", 6), ("returned", 6)]
    assert [(r.action, int(r.status), r.step_index, r.actor) for r in instance.timeline] == [
        ("opened", 4, 0, ""), ("claim", 4, 0, "mc-dong-tien"), ("complete", 4, 0, "mc-dong-tien"),
        ("complete", 4, 1, "cc-dong-tien"), ("complete", 4, 2, "cv-dong-son"), ("complete", 4, 3, "tp-dong-son"),
        ("approve", 4, 4, "ct-dong-son"), ("signed", 9, 4, "signing"), ("return_result", 10, 6, "mc-dong-tien")]
    assert instance.timeline[2].note == "đủ hồ sơ"
    assert instance.timeline[4].unit == "huyen-dong-son"
    assert instance.timeline[4].step_deadline == at(2026, 10, 20, 15, 12)


def test_a_process_without_signing_is_ready_when_only_the_return_step_is_left(calendar):
    instance = open_two_days(calendar, at(2026, 10, 5, 7, 0))
    instance.apply(Complete(), by=DESK, now=at(2026, 10, 5, 8, 0))
    instance.apply(Complete(), by=REVIEWER, now=at(2026, 10, 5, 9, 0))
    assert instance.status is Status.RESULT_READY
    assert kinds(instance)[-2:] == [("assigned", 2), ("result_ready", 2)]


# -- claiming -----------------------------------------------------------------------------------


def test_a_claimed_step_is_the_claimers(open_social, people):
    instance = open_social()
    to_step(instance, people, 2, at(2026, 10, 6, 8, 0))
    t = at(2026, 10, 6, 9, 0)
    instance.apply(Claim(), by=people.district_reviewer, now=t)
    assert instance.apply(Claim(), by=people.district_reviewer, now=t) is False  # already theirs
    with pytest.raises(FailedPrecondition, match="already claimed by cv-dong-son"):
        instance.apply(Claim(), by=people.district_reviewer_2, now=t)
    with pytest.raises(PermissionDenied, match="claimed by cv-dong-son"):
        instance.apply(Complete(), by=people.district_reviewer_2, now=t)
    instance.apply(Complete(), by=people.district_reviewer, now=t)
    assert instance.steps[2].actor == "cv-dong-son"


def test_an_official_of_another_unit_or_role_is_refused(open_social, people):
    instance = open_social()
    with pytest.raises(PermissionDenied, match="works at xa-dong-thinh"):
        instance.apply(Complete(), by=people.other_commune_reviewer, now=at(2026, 10, 5, 8, 0))
    with pytest.raises(PermissionDenied, match="does not hold the role receive"):
        instance.apply(Complete(), by=people.commune_reviewer, now=at(2026, 10, 5, 8, 0))
    assert instance.current.index == 0 and len(instance.timeline) == 1


# -- forward, transfer, back ----------------------------------------------------------------------


def test_forward_hands_the_step_to_another_unit_of_the_same_level(open_social, people):
    instance = open_social()
    to_step(instance, people, 1, at(2026, 10, 5, 8, 0))
    before = len(instance.facts)
    instance.apply(Forward(unit="xa-dong-thinh", unit_id="000.02.06.H56", reason="nơi cư trú"),
                   by=people.commune_reviewer, now=at(2026, 10, 5, 9, 0))
    step = instance.current
    assert (step.index, step.unit, step.unit_id, step.level.value) == (1, "xa-dong-thinh", "000.02.06.H56", "commune")
    assert step.deadline == at(2026, 10, 13, 14, 24)  # the statutory schedule does not move
    assert kinds(instance, before) == [("forwarded", 1), ("assigned", 1)]
    assert instance.facts[before].data["from_unit"] == "xa-dong-tien"
    assert instance.timeline[-1].note == "xa-dong-tien → xa-dong-thinh; nơi cư trú"
    with pytest.raises(PermissionDenied):
        instance.apply(Complete(), by=people.commune_reviewer, now=at(2026, 10, 5, 10, 0))
    instance.apply(Complete(), by=people.other_commune_reviewer, now=at(2026, 10, 5, 10, 0))
    assert instance.current.unit == "huyen-dong-son"


def test_transfer_goes_to_another_level_listed_in_the_definition(open_social, people):
    instance = open_social()
    to_step(instance, people, 1, at(2026, 10, 5, 8, 0))
    with pytest.raises(InvalidArgument, match="not a transfer target.*allowed: so-ldtbxh, xa-dong-thinh"):
        instance.apply(Transfer(unit="huyen-trieu-son"), by=people.commune_reviewer, now=at(2026, 10, 5, 9, 0))
    with pytest.raises(InvalidArgument, match="own level"):
        instance.apply(Transfer(unit="xa-dong-thinh"), by=people.commune_reviewer, now=at(2026, 10, 5, 9, 0))
    instance.apply(Transfer(unit="so-ldtbxh", reason="thuộc thẩm quyền Sở"), by=people.commune_reviewer,
                   now=at(2026, 10, 5, 9, 0))
    assert (instance.current.unit, instance.current.level.value) == ("so-ldtbxh", "province")
    assert instance.facts[-2].kind is FactKind.TRANSFERRED and instance.facts[-2].data["to_level"] == "province"
    instance.apply(Complete(), by=people.province_reviewer, now=at(2026, 10, 5, 10, 0))


def test_only_a_step_that_may_forward_forwards_or_transfers(open_social, people):
    instance = open_social()
    to_step(instance, people, 2, at(2026, 10, 5, 8, 0))
    for command in (Transfer(unit="so-ldtbxh"), Forward(unit="huyen-trieu-son", unit_id="000.00.07.H56")):
        with pytest.raises(FailedPrecondition, match="may not forward or transfer"):
            instance.apply(command, by=people.district_reviewer, now=at(2026, 10, 5, 9, 0))
    with pytest.raises(FailedPrecondition, match="may not forward"):
        open_social().apply(Forward(unit="xa-dong-thinh", unit_id="x"), by=people.desk, now=at(2026, 10, 5, 9, 0))


def test_return_previous_reopens_the_step_before(open_social, people):
    instance = open_social()
    to_step(instance, people, 2, at(2026, 10, 6, 8, 0))
    instance.apply(ReturnPrevious(reason="thiếu biên bản họp hội đồng"), by=people.district_reviewer,
                   now=at(2026, 10, 6, 9, 0))
    assert instance.current.index == 1 and instance.current.actor == ""
    assert instance.steps[2].state is StepState.PENDING and instance.steps[1].done_at is None
    assert instance.facts[-1].kind is FactKind.ASSIGNED
    assert instance.facts[-1].data == {"returned_from": 2, "reason": "thiếu biên bản họp hội đồng"}
    assert (instance.timeline[-1].action, instance.timeline[-1].step_index) == ("return_previous", 2)
    with pytest.raises(InvalidArgument, match="reason"):
        instance.apply(ReturnPrevious(reason=""), by=people.commune_reviewer, now=at(2026, 10, 6, 9, 0))


def test_a_signed_step_is_not_returned_to(calendar, people):
    unit, unit_id, level = UNIT
    process = ProcessDefinition.from_dict({
        "steps": [{"role": r, "unit": unit, "unit_id": unit_id, "level": level, "share": s}
                  for r, s in (("receive", .2), ("sign", .2), ("seal", .2), ("review", .2), ("return", .2))],
        "time_type": "working_days", "duration_hours": 40})
    t = at(2026, 10, 5, 8, 0)
    instance = WorkflowInstance.open(definition=process, dossier_id="d3", code="c3", receiving_unit="dong-son",
                                     area="dong-son",
                                     procedure_code="1.2", received_at=t, due_at=process.due_from(t, calendar),
                                     now=t, calendar=calendar)
    signer = Official("ct", unit, frozenset({"sign"}))
    instance.apply(Complete(), by=DESK, now=t)
    instance.apply(Approve(), by=signer, now=t)
    instance.apply(Signed(signing_request_id="d3:sign:1", signers=("A", "UBND")), by=SIGNING, now=t)
    assert instance.current.index == 3 and instance.status is Status.PROCESSING  # a step after the seal
    with pytest.raises(FailedPrecondition, match="a signed document is not taken back"):
        instance.apply(ReturnPrevious(reason="sai"), by=REVIEWER, now=t)


# -- signing --------------------------------------------------------------------------------------


def test_signing_reports_are_checked_and_counted_once(open_social, people):
    instance = open_social()
    to_step(instance, people, 4, at(2026, 10, 20, 8, 0))
    t = at(2026, 10, 21, 8, 0)
    with pytest.raises(FailedPrecondition, match="no pending signing request 'd1:sign:1' \\(none is pending\\)"):
        instance.apply(Signed(signing_request_id="d1:sign:1"), by=SIGNING, now=t)
    instance.apply(Approve(), by=people.chairman, now=t)
    with pytest.raises(FailedPrecondition, match="already at signing"):
        instance.apply(Approve(), by=people.chairman, now=t)
    with pytest.raises(FailedPrecondition, match="draft is at signing"):
        instance.apply(Refuse(reason="không đủ điều kiện"), by=people.chairman, now=t)
    instance.apply(SigningFailed(signing_request_id="d1:sign:1", reason="HSM unavailable"), by=SIGNING, now=t)
    assert instance.pending_signing is None and instance.current.index == 4
    assert instance.facts[-1].kind is FactKind.SIGNING_FAILED
    instance.apply(Approve(), by=people.chairman, now=t)
    with pytest.raises(FailedPrecondition, match="the pending one is d1:sign:2"):
        instance.apply(Signed(signing_request_id="d1:sign:1"), by=SIGNING, now=t)
    assert instance.apply(Signed(signing_request_id="d1:sign:2", signers=("A",)), by=SIGNING, now=t) is True
    facts = len(instance.facts)
    assert instance.apply(Signed(signing_request_id="d1:sign:2", signers=("A",)), by=SIGNING, now=t) is False
    assert len(instance.facts) == facts and instance.status is Status.RESULT_READY
    instance.apply(ReturnResult(channel="online", receiver="A"), by=people.desk, now=t)
    # signing re-sends its report under a new message id after the result went out: still a no-op
    assert instance.apply(Signed(signing_request_id="d1:sign:2"), by=SIGNING, now=t, request_id="m2") is False
    assert instance.status is Status.RETURNED


def test_only_the_signing_service_reports_signatures(open_social, people):
    instance = open_social()
    to_step(instance, people, 4, at(2026, 10, 20, 8, 0))
    instance.apply(Approve(), by=people.chairman, now=at(2026, 10, 20, 9, 0))
    with pytest.raises(PermissionDenied, match="signed on dossier .* is for the signing service, not ct-dong-son"):
        instance.apply(Signed(signing_request_id="d1:sign:1"), by=people.chairman, now=at(2026, 10, 20, 9, 0))
    with pytest.raises(PermissionDenied, match="approve .* officials with role sign at huyen-dong-son, not intake"):
        instance.apply(Approve(), by=INTAKE, now=at(2026, 10, 20, 9, 0))


# -- supplements ----------------------------------------------------------------------------------
# receive 25 % / review 50 % / return 25 % of 16 h, received Mon 5/10/2026 07:00:
# deadlines Mon 5/10 11:00 (4 h), Tue 6/10 11:00 (12 h: Mon 8 h + 4 h), due Tue 6/10 17:00 (16 h).
# The reviewer asks for a supplement Mon 10:00; the applicant brings it Wed 7/10 09:00.


def _supplement(calendar, **extra) -> WorkflowInstance:
    instance = open_two_days(calendar, at(2026, 10, 5, 7, 0), **extra)
    instance.apply(Complete(), by=DESK, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="thiếu giấy xác nhận", deadline=at(2026, 10, 9, 17, 0)),
                   by=REVIEWER, now=at(2026, 10, 5, 10, 0))
    return instance


def test_a_supplement_under_pause_moves_the_due_date_by_the_working_time_waited(calendar):
    instance = _supplement(calendar)
    assert [s.deadline for s in instance.steps] == [at(2026, 10, 5, 11, 0), at(2026, 10, 6, 11, 0),
                                                    at(2026, 10, 6, 17, 0)]
    assert instance.status is Status.SUPPLEMENT_REQUESTED
    assert instance.facts[-1].kind is FactKind.SUPPLEMENT_REQUESTED
    instance.apply(SupplementReceived(), by=INTAKE, now=at(2026, 10, 7, 9, 0))
    # Waited: Mon 10:00–11:30 1.5 h + 13:30–17:00 3.5 h + Tue 8 h + Wed 07:00–09:00 2 h = 15 h.
    # review: Tue 11:00 + 15 h = Tue 0.5 + 3.5, Wed 8 (12 h), Thu 07:00 + 3 h → Thu 8/10 10:00
    # due:    Tue 17:00 + 15 h = Wed 8 h, Thu 7 h: 4.5 to 11:30, 2.5 from 13:30 → Thu 8/10 16:00
    assert instance.status is Status.PROCESSING
    assert [s.deadline for s in instance.steps] == [at(2026, 10, 5, 11, 0), at(2026, 10, 8, 10, 0),
                                                    at(2026, 10, 8, 16, 0)]
    assert instance.due_at == at(2026, 10, 8, 16, 0)
    assert instance.previous_due_at == [at(2026, 10, 6, 17, 0)]
    supplement = instance.supplements[-1]
    assert (supplement.due_before, supplement.due_after) == (at(2026, 10, 6, 17, 0), at(2026, 10, 8, 16, 0))
    assert instance.facts[-1].kind is FactKind.SUPPLEMENTED
    assert instance.facts[-1].data["policy"] == "pause"
    assert instance.timeline[-1].step_deadline == at(2026, 10, 8, 10, 0)


def test_the_supplemented_documents_join_the_dossier_once(calendar):
    instance = _supplement(calendar)
    old = {"key": "intake/d1/aa", "sha256": "aa", "size": 3, "media_type": "application/pdf", "name": "don.pdf"}
    instance.documents = [old]
    new = {**old, "key": "intake/d1/bb", "sha256": "bb", "name": "giay-xac-nhan.pdf"}
    instance.apply(SupplementReceived(documents=(new, old)), by=INTAKE, now=at(2026, 10, 7, 9, 0))
    assert instance.documents == [old, new]  # the one already there is not listed twice
    with pytest.raises(InvalidArgument, match="documents"):
        SupplementReceived(documents="giay.pdf")


def test_a_supplement_under_restart_gives_the_full_duration_from_the_resubmission(calendar):
    instance = _supplement(calendar, supplement_policy="restart")
    instance.apply(SupplementReceived(), by=INTAKE, now=at(2026, 10, 7, 9, 0))
    # From Wed 7/10 09:00: review at 75 % = 12 h: Wed 6 h, Thu 6 h: 4.5 to 11:30, 1.5 from 13:30
    # → Thu 8/10 15:00; due 16 h: Wed 6, Thu 8 (14), Fri 07:00 + 2 h → Fri 9/10 09:00.
    assert [s.deadline for s in instance.steps] == [at(2026, 10, 5, 11, 0), at(2026, 10, 8, 15, 0),
                                                    at(2026, 10, 9, 9, 0)]
    assert instance.due_at == at(2026, 10, 9, 9, 0)
    assert instance.previous_due_at == [at(2026, 10, 6, 17, 0)]


def test_a_pause_across_tet_counts_only_working_time(calendar):
    # 3 working days from Tue 2/2/2027 07:00: Tue 8, Wed 8, (Tết 4–10/2) Thu 11/2 8 → due Thu 11/2 17:00.
    # Asked Wed 3/2 10:00, supplemented Thu 11/2 08:00: waited Wed 1.5 + 3.5, Thu 1 = 6 h.
    # due: Thu 11/2 17:00 + 6 h → Fri 12/2 07:00 + 4.5 to 11:30, 1.5 from 13:30 → Fri 12/2 15:00.
    instance = open_two_days(calendar, at(2027, 2, 2, 7, 0), duration_hours=24)
    assert instance.due_at == at(2027, 2, 11, 17, 0)
    instance.apply(Complete(), by=DESK, now=at(2027, 2, 2, 8, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2027, 2, 20, 17, 0)), by=REVIEWER,
                   now=at(2027, 2, 3, 10, 0))
    instance.apply(SupplementReceived(), by=INTAKE, now=at(2027, 2, 11, 8, 0))
    assert instance.due_at == at(2027, 2, 12, 15, 0)


def test_a_supplement_answered_outside_working_hours_moves_nothing(calendar):
    instance = open_two_days(calendar, at(2026, 10, 5, 7, 0))
    instance.apply(Complete(), by=DESK, now=at(2026, 10, 5, 8, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2026, 10, 9, 17, 0)), by=REVIEWER,
                   now=at(2026, 10, 5, 17, 30))
    instance.apply(SupplementReceived(), by=INTAKE, now=at(2026, 10, 5, 20, 0))
    assert instance.due_at == at(2026, 10, 6, 17, 0) and instance.previous_due_at == []


def test_a_calendar_day_pause_moves_by_whole_days_to_a_working_day(calendar):
    instance = open_two_days(calendar, at(2027, 4, 19, 9, 0), time_type="calendar_days", duration_hours=None,
                             duration_days=10)
    assert instance.due_at == at(2027, 4, 29, 17, 0)
    instance.apply(Complete(), by=DESK, now=at(2027, 4, 19, 10, 0))
    instance.apply(RequestSupplement(reason="r", deadline=at(2027, 4, 30, 17, 0)), by=REVIEWER,
                   now=at(2027, 4, 20, 9, 0))
    instance.apply(SupplementReceived(), by=INTAKE, now=at(2027, 4, 21, 15, 0))
    # 1 day waited: Thu 29/4 + 1 = Fri 30/4 (holiday) → Sat, Sun, Mon 3/5 (observed) → Tue 4/5 17:00
    assert instance.due_at == at(2027, 5, 4, 17, 0)


def test_a_passed_supplement_deadline_stops_the_dossier_or_keeps_it_waiting(calendar):
    instance = _supplement(calendar)
    with pytest.raises(FailedPrecondition, match="has not passed"):
        instance.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 9, 16, 0))
    instance.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 9, 17, 0))
    assert instance.status is Status.STOPPED and instance.finished_at == at(2026, 10, 9, 17, 0)
    assert [s.state for s in instance.steps] == [StepState.DONE, StepState.SKIPPED, StepState.SKIPPED]
    assert instance.facts[-1].kind is FactKind.REFUSED and instance.facts[-1].data["cause"] == "supplement_expired"

    waiting = _supplement(calendar, supplement_expiry="keep_waiting")
    assert waiting.definition.supplement_expiry is SupplementExpiry.KEEP_WAITING
    assert waiting.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 10, 8, 0)) is True
    assert waiting.status is Status.SUPPLEMENT_REQUESTED and waiting.supplements[-1].expired
    assert waiting.facts[-1].kind is FactKind.SUPPLEMENT_EXPIRED
    assert waiting.apply(SupplementExpired(), by=CLOCK, now=at(2026, 10, 12, 8, 0)) is False
    waiting.apply(SupplementReceived(), by=INTAKE, now=at(2026, 10, 12, 9, 0))
    assert waiting.status is Status.PROCESSING


def test_a_supplement_deadline_must_be_ahead(calendar):
    instance = open_two_days(calendar, at(2026, 10, 5, 7, 0))
    instance.apply(Complete(), by=DESK, now=at(2026, 10, 5, 8, 0))
    with pytest.raises(InvalidArgument) as caught:
        instance.apply(RequestSupplement(reason="r", deadline=at(2026, 10, 5, 9, 0)), by=REVIEWER,
                       now=at(2026, 10, 5, 10, 0))
    assert caught.value.field == "deadline"


# -- payments, refusal, withdrawal, apology -----------------------------------------------------


def test_a_payment_pauses_processing_until_it_is_recorded(open_social, people):
    instance = open_social()
    to_step(instance, people, 2, at(2026, 10, 6, 8, 0))
    t = at(2026, 10, 14, 9, 0)
    instance.apply(RequestPayment(amount=50_000, note="lệ phí"), by=people.district_reviewer, now=t)
    assert instance.status is Status.PAYMENT_REQUESTED
    with pytest.raises(FailedPrecondition, match="status 6"):
        instance.apply(Complete(), by=people.district_reviewer, now=t)
    instance.apply(RecordPayment(receipt="BL-0001"), by=INTAKE, now=t)
    assert instance.status is Status.PROCESSING
    assert instance.payments[-1].paid_at == t and instance.payments[-1].recorded_by == "intake"
    assert kinds(instance)[-2:] == [("payment_requested", 2), ("payment_recorded", 2)]


def test_a_tax_notice_during_signing_makes_the_result_wait_for_the_payment(open_social, people):
    instance = open_social()
    to_step(instance, people, 4, at(2026, 10, 20, 8, 0))
    t = at(2026, 10, 26, 8, 0)
    instance.apply(Approve(), by=people.chairman, now=t)
    instance.apply(RequestPayment(amount=1_200_000), by=people.chairman, now=t)
    instance.apply(Signed(signing_request_id="d1:sign:1", signers=("A", "B")), by=SIGNING, now=t)
    assert instance.status is Status.PAYMENT_REQUESTED and instance.current.index == 6
    assert FactKind.RESULT_READY not in [f.kind for f in instance.facts]
    instance.apply(RecordPayment(), by=INTAKE, now=t)
    assert instance.status is Status.RESULT_READY
    assert instance.facts[-1].kind is FactKind.RESULT_READY


def test_refusal_stops_the_dossier(open_social, people):
    instance = open_social()
    to_step(instance, people, 2, at(2026, 10, 6, 8, 0))
    with pytest.raises(InvalidArgument, match="reason"):
        instance.apply(Refuse(reason=" "), by=people.district_reviewer, now=at(2026, 10, 6, 9, 0))
    instance.apply(Refuse(reason="không thuộc đối tượng"), by=people.district_reviewer, now=at(2026, 10, 6, 9, 0))
    assert instance.status is Status.STOPPED and instance.reason == "không thuộc đối tượng"
    assert [s.state.value for s in instance.steps] == ["done"] * 3 + ["skipped"] * 4
    assert instance.facts[-1].kind is FactKind.REFUSED and instance.timeline[-1].status is Status.STOPPED
    with pytest.raises(FailedPrecondition, match=r"status 8 \(Dừng xử lý\); allowed now: nothing"):
        instance.apply(Claim(), by=people.leader, now=at(2026, 10, 6, 10, 0))


def test_withdrawal_from_intake_closes_the_dossier_in_any_open_status(calendar):
    instance = _supplement(calendar)
    instance.apply(Withdrawn(reason="công dân rút"), by=INTAKE, now=at(2026, 10, 6, 9, 0))
    assert instance.status is Status.WITHDRAWN and instance.closed_at == at(2026, 10, 6, 9, 0)
    assert [s.state for s in instance.steps] == [StepState.DONE, StepState.SKIPPED, StepState.SKIPPED]
    assert instance.facts[-1].kind is FactKind.WITHDRAWN
    assert instance.apply(Withdrawn(), by=INTAKE, now=at(2026, 10, 6, 10, 0)) is False  # intake re-sent it


def test_an_apology_promises_a_later_date_and_keeps_the_due_date(open_social, people):
    instance = open_social()
    with pytest.raises(InvalidArgument, match="new_due_at"):
        instance.apply(Apologize(new_due_at=at(2026, 10, 27, 16, 0), reason="r"), by=CLOCK, now=at(2026, 10, 26, 8))
    instance.apply(Apologize(new_due_at=at(2026, 10, 30, 16, 0), reason="chờ xác minh"), by=CLOCK,
                   now=at(2026, 10, 26, 8, 0))
    assert instance.promised_due_at == at(2026, 10, 30, 16, 0) and instance.due_at == at(2026, 10, 27, 16, 0)
    assert instance.apologies[-1].previous_due_at == at(2026, 10, 27, 16, 0)
    assert instance.facts[-1].kind is FactKind.APOLOGY_ISSUED and instance.facts[-1].data["late"] is False


# -- idempotency and persistence ----------------------------------------------------------------


def test_a_repeated_request_id_changes_nothing(open_social, people):
    instance = open_social()
    t = at(2026, 10, 5, 8, 0)
    assert instance.apply(Complete(), by=people.desk, now=t, request_id="req-1") is True
    snapshot, facts = instance.to_dict(), len(instance.facts)
    assert instance.apply(Complete(), by=people.desk, now=t, request_id="req-1") is False
    assert instance.to_dict() == snapshot and len(instance.facts) == facts
    with pytest.raises(AlreadyExists, match="req-1"):
        instance.apply(Claim(), by=people.commune_reviewer, now=t, request_id="req-1")


@pytest.mark.parametrize("fingerprint, refused", [("fp-1", False), ("", False), ("fp-2", True)],
                         ids=["same-payload", "unchecked", "other-payload"])
def test_a_repeated_request_id_with_another_fingerprint_is_already_exists(open_social, people, fingerprint, refused):
    instance = open_social()
    t = at(2026, 10, 5, 8, 0)
    assert instance.apply(Complete(), by=people.desk, now=t, request_id="req-1", fingerprint="fp-1") is True
    instance.remember_answer("req-1", "fp-1", {"rows": len(instance.timeline), "when": t})
    row = instance.row_for("req-1")
    assert (row.fingerprint, row.answer) == ("fp-1", {"rows": 2, "when": t.isoformat()})
    assert TimelineRow.from_dict(json.loads(json.dumps(row.to_dict()))) == row  # kept as plain JSON
    snapshot = instance.to_dict()
    if refused:
        with pytest.raises(AlreadyExists, match="'req-1' was already used for another complete request"):
            instance.apply(Complete(), by=people.desk, now=t, request_id="req-1", fingerprint=fingerprint)
    else:
        assert instance.apply(Complete(), by=people.desk, now=t, request_id="req-1", fingerprint=fingerprint) is False
    assert instance.to_dict() == snapshot


def test_the_instance_round_trips_through_plain_json(open_social, people, calendar):
    instance = open_social()
    to_step(instance, people, 4, at(2026, 10, 20, 8, 0))
    instance.apply(Approve(draft={"key": "k"}), by=people.chairman, now=at(2026, 10, 20, 9, 0), request_id="r1")
    instance.apply(RequestPayment(amount=10), by=people.chairman, now=at(2026, 10, 20, 9, 30))
    instance.apply(Apologize(new_due_at=at(2026, 11, 2, 9, 0), reason="r"), by=CLOCK, now=at(2026, 10, 21, 9, 0))
    data = json.loads(json.dumps(instance.to_dict()))
    again = WorkflowInstance.from_dict(data, calendar)
    assert again == instance
    assert again.to_dict() == data
    assert again.apply(Approve(), by=people.chairman, now=at(2026, 10, 20, 9, 0), request_id="r1") is False


# -- properties ---------------------------------------------------------------------------------

INSTANTS = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 1)).map(
    lambda t: t.replace(second=0, microsecond=0, tzinfo=VN_TZ))
MINUTES = st.integers(0, 60 * 24 * 30).map(lambda m: dt.timedelta(minutes=m))


@PROPERTY
@given(INSTANTS, MINUTES, MINUTES, st.sampled_from(list(SupplementPolicy)))
def test_a_supplement_never_moves_a_deadline_earlier(open_social, people, received, asked_after, waited, policy):
    process = open_social().definition
    process = ProcessDefinition.from_dict({**process.to_dict(), "supplement_policy": policy.value})
    instance = open_social(received, process)
    asked = received + asked_after
    to_step(instance, people, 1, asked)
    instance.apply(RequestSupplement(reason="r", deadline=asked + waited + dt.timedelta(days=1)),
                   by=people.commune_reviewer, now=asked)
    before = [s.deadline for s in instance.steps]
    due_before = instance.due_at
    instance.apply(SupplementReceived(), by=INTAKE, now=asked + waited)
    after = [s.deadline for s in instance.steps]
    assert all(b <= a for b, a in zip(before, after, strict=True))
    assert after[0] == before[0]  # a done step keeps the deadline it was held to
    assert instance.due_at >= due_before and after[-1] == instance.due_at
    assert after[1:] == sorted(after[1:])
    assert instance.previous_due_at == ([due_before] if instance.due_at != due_before else [])


COMMANDS = {
    "claim": lambda now: Claim(),
    "complete": lambda now: Complete(),
    "approve": lambda now: Approve(),
    "return_previous": lambda now: ReturnPrevious(reason="r"),
    "forward": lambda now: Forward(unit="xa-dong-thinh", unit_id="000.02.06.H56"),
    "transfer": lambda now: Transfer(unit="so-ldtbxh"),
    "request_supplement": lambda now: RequestSupplement(reason="r", deadline=now + dt.timedelta(days=5)),
    "request_payment": lambda now: RequestPayment(amount=1000),
    "refuse": lambda now: Refuse(reason="r"),
}


@PROPERTY
@given(st.integers(0, 4), st.data())
def test_any_action_repeated_with_its_request_id_is_a_no_op(open_social, people, step_index, data):
    instance = open_social()
    now = at(2026, 10, 7, 9, 0)
    to_step(instance, people, step_index, now)
    official = {0: people.desk, 1: people.commune_reviewer, 2: people.district_reviewer, 3: people.leader,
                4: people.chairman}[instance.current.index]
    action = data.draw(st.sampled_from(instance.allowed_actions(official)))
    command = COMMANDS[action.value](now)
    assert instance.apply(command, by=official, now=now, request_id="once") is True
    snapshot, facts = instance.to_dict(), len(instance.facts)
    assert instance.apply(command, by=official, now=now + dt.timedelta(hours=1), request_id="once") is False
    assert instance.to_dict() == snapshot and len(instance.facts) == facts
