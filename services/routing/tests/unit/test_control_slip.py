"""Forms 05 and 06 from an instance: the control slip's rows from its hand-overs (who handed the
dossier to whom, when, by which deadline, and whether each holder was early, on time or late — by
date, as Decision 766 judges), and a register row (when it left the desk, came back, was returned)."""

from __future__ import annotations

import datetime as dt

from motcua.worktime import VN_TZ, vietnam_calendar
from routing.domain.actions import SIGNING, Approve, Claim, Complete, Forward, ReturnResult, Signed
from routing.domain.control_slip import control_slip
from routing.domain.instance import WorkflowInstance
from routing.domain.register import register_row


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN_TZ)


def test_every_hand_over_is_a_row_with_its_holder_deadline_and_verdict(open_social, people):
    instance = open_social()  # received Friday 2/10/2026 16:00 (by "dong-son"); step 0 due 5/10, step 2 due 20/10
    instance.apply(Claim(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 9, 0))
    instance.apply(Forward(unit="xa-dong-thinh", unit_id="000.02.06.H56", reason="nơi cư trú"),
                   by=people.commune_reviewer, now=at(2026, 10, 6, 9, 0))
    instance.apply(Complete(), by=people.other_commune_reviewer, now=at(2026, 10, 8, 10, 0))
    # The district's review is done days after its deadline (20/10): late.
    instance.apply(Complete(), by=people.district_reviewer, now=at(2026, 10, 22, 10, 0))

    slip = control_slip(instance)
    rows = [(r.step_index, r.from_unit, r.to_unit, r.handed_at, r.done_at, r.verdict) for r in slip.rows]
    assert rows == [
        (0, "dong-son", "xa-dong-tien", at(2026, 10, 2, 16, 0), at(2026, 10, 5, 9, 0), "on_time"),
        (1, "xa-dong-tien", "xa-dong-tien", at(2026, 10, 5, 9, 0), at(2026, 10, 6, 9, 0), "early"),
        (1, "xa-dong-tien", "xa-dong-thinh", at(2026, 10, 6, 9, 0), at(2026, 10, 8, 10, 0), "early"),
        (2, "xa-dong-thinh", "huyen-dong-son", at(2026, 10, 8, 10, 0), at(2026, 10, 22, 10, 0), "late"),
        (3, "huyen-dong-son", "huyen-dong-son", at(2026, 10, 22, 10, 0), None, ""),
    ]
    assert [r.from_actor for r in slip.rows] == ["", "mc-dong-tien", "", "cc-dong-thinh", "cv-dong-son"]
    assert slip.rows[3].deadline == instance.steps[2].deadline and slip.rows[3].verdict_text == "Quá hạn"
    assert slip.rows[-1].verdict_text == "Đang giải quyết"
    assert (slip.code, slip.receiving_unit, slip.status) == (instance.code, "dong-son", 4)


def test_a_finished_dossier_has_every_row_closed_and_survives_its_document(open_social, people):
    instance = open_social()
    t = at(2026, 10, 5, 8, 0)
    for official in (people.desk, people.commune_reviewer, people.district_reviewer, people.leader):
        instance.apply(Complete(), by=official, now=t)
    instance.apply(Approve(draft={"key": "d"}), by=people.chairman, now=t)
    instance.apply(Signed(signing_request_id="d1:sign:1", signers=("Lê Văn Ba", "UBND huyện Đông Sơn"),
                          result={"key": "s"}), by=SIGNING, now=t)
    instance.apply(ReturnResult(channel="desk", receiver="Nguyễn Thị Hoa"), by=people.desk, now=t)

    slip = control_slip(WorkflowInstance.from_dict(instance.to_dict(), vietnam_calendar()))
    # Steps 0–4 and the return step; the seal step is done in the same round as the signature.
    assert [r.step_index for r in slip.rows] == [0, 1, 2, 3, 4, 6]
    assert all(r.done_at == t for r in slip.rows)
    assert [r.verdict for r in slip.rows] == ["on_time", "early", "early", "early", "early", "early"]
    assert slip.rows[-1].from_unit == "huyen-dong-son" and slip.rows[-1].to_unit == "xa-dong-tien"


def test_a_register_row_says_when_the_dossier_left_the_desk_came_back_and_was_returned(social, calendar, people):
    due = social.due_from(at(2026, 10, 2, 16, 0), calendar)
    instance = WorkflowInstance.open(
        definition=social, dossier_id="d1", code="000.01.06.H56-261002-0001", receiving_unit="xa-dong-tien",
        area="dong-son", procedure_code="1.001776", received_at=at(2026, 10, 2, 16, 0), due_at=due,
        now=at(2026, 10, 2, 16, 0), calendar=calendar, procedure_name="Trợ cấp xã hội",
        applicant={"full_name": "Lê Thị Hoa", "address": "Đông Tiến", "phone": "0912345678"})
    assert register_row(instance).sent_at is None  # still at the commune's desk
    instance.apply(Complete(), by=people.desk, now=at(2026, 10, 5, 8, 0))
    instance.apply(Complete(), by=people.commune_reviewer, now=at(2026, 10, 6, 8, 0))
    for official in (people.district_reviewer, people.leader):
        instance.apply(Complete(), by=official, now=at(2026, 10, 7, 8, 0))
    instance.apply(Approve(draft={"key": "d"}), by=people.chairman, now=at(2026, 10, 8, 8, 0))
    instance.apply(Signed(signing_request_id="d1:sign:1", signers=("Lê Văn Ba", "UBND huyện Đông Sơn"),
                          result={"key": "s"}), by=SIGNING, now=at(2026, 10, 9, 8, 0))
    instance.apply(ReturnResult(channel="desk", receiver="Lê Thị Hoa"), by=people.desk, now=at(2026, 10, 12, 9, 0))

    row = register_row(WorkflowInstance.from_dict(instance.to_dict(), calendar))
    assert (row.applicant_name, row.applicant_contact, row.procedure_name) == (
        "Lê Thị Hoa", "Đông Tiến, 0912345678", "Trợ cấp xã hội")
    assert row.deciding_unit == "huyen-dong-son"  # the signing step's unit
    assert (row.sent_at, row.result_at, row.returned_at) == (
        at(2026, 10, 6, 8, 0), at(2026, 10, 9, 8, 0), at(2026, 10, 12, 9, 0))
    assert row.status == 10 and row.due_at == due
