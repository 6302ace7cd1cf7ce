"""The one table of allowed actions, checked against an independent statement of the national
transitions, and the commands' field validation."""

from __future__ import annotations

import datetime as dt

import pytest

from motcua.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from motcua.worktime import VN_TZ
from routing.domain.actions import (
    ALLOWED,
    CLOCK,
    INTAKE,
    SIGNING,
    Action,
    Complete,
    Official,
    RequestSupplement,
    Signed,
    parse,
)
from routing.domain.instance import StepState, WorkflowInstance
from routing.domain.process import ProcessDefinition, Role
from routing.domain.status import Status

ROLES = [r.value for r in Role]  # one step of each role, in this order, all at one commune

# Who may do what, written out from DOMAIN.md's transitions (not generated from ALLOWED):
# 4→4 claim/complete/forward/transfer/back; 4→5 supplement; 4→6 payment; 4→8 refuse; 4→9 via the
# signing report (or completing the last step before return); 5→4 supplement received; 5→8 the
# supplement deadline; 6→4|9 payment recorded; 9→10 return; 4|5|6→7 withdrawn (intake).
EXPECTED: dict[int, dict[str, str]] = {
    4: {"receive": "claim complete forward transfer",
        "assign": "claim complete return_previous forward transfer",
        "review": "claim complete return_previous forward transfer request_supplement request_payment refuse",
        "approve": "claim complete return_previous forward transfer request_supplement request_payment refuse",
        "sign": "claim approve return_previous request_payment refuse",
        "seal": "claim approve",
        "intake": "withdrawn", "signing": "signed signing_failed", "clock": "apologize"},
    5: {"intake": "supplement_received withdrawn", "clock": "supplement_expired"},
    6: {"review": "record_payment", "approve": "record_payment", "sign": "record_payment",
        "intake": "record_payment withdrawn", "signing": "signed signing_failed", "clock": "apologize"},
    9: {"return": "claim return_result"},
    7: {}, 8: {}, 10: {},
}
SYSTEMS = {"intake": INTAKE, "signing": SIGNING, "clock": CLOCK}


def instance_at(status: Status, role: str | None, calendar) -> WorkflowInstance:
    """An instance in ``status`` with the step of ``role`` active (None: closed, no active step)."""
    process = ProcessDefinition.from_dict({
        "steps": [{"role": r, "unit": "xa-a", "unit_id": "000.01.06.H56", "level": "commune", "share": 1 / 7}
                  for r in ROLES[:-1]] + [{"role": "return", "unit": "xa-a", "unit_id": "000.01.06.H56",
                                           "level": "commune", "share": 1 - 6 * (1 / 7)}],
        "time_type": "working_days", "duration_hours": 56})
    t = dt.datetime(2026, 10, 5, 7, 0, tzinfo=VN_TZ)
    instance = WorkflowInstance.open(definition=process, dossier_id="d", code="C-1", receiving_unit="x", area="x",
                                     procedure_code="p", received_at=t, due_at=process.due_from(t, calendar), now=t,
                                     calendar=calendar)
    active = ROLES.index(role) if role else len(ROLES)
    for step in instance.steps:
        step.state = (StepState.DONE if step.index < active else
                      StepState.ACTIVE if step.index == active else StepState.PENDING)
    instance.status = status
    return instance


def cases():
    for status in Status:
        if status is Status.RESULT_READY:
            roles = ["return"]
        elif status.terminal:
            roles = [None]
        else:
            roles = ROLES[:-1]  # the return step is active only once the result is ready
        for role in roles:
            yield pytest.param(status, role, id=f"{int(status)}-{role or 'closed'}")


@pytest.mark.parametrize(("status", "role"), list(cases()))
def test_every_action_by_every_actor_is_allowed_or_refused_as_the_transitions_say(calendar, status, role):
    instance = instance_at(status, role, calendar)
    expected = {who: set(actions.split()) for who, actions in EXPECTED[int(status)].items()}
    anyone_now = set().union(*(acts for who, acts in expected.items() if who in SYSTEMS or who == role))
    actors = {"official": Official("o", "xa-a", frozenset(ROLES)), **SYSTEMS}
    wrong = []
    for label, actor in actors.items():
        mine = expected.get(role if label == "official" else label, set())
        for action in Action:
            want = None if action.value in mine else (
                PermissionDenied if action.value in anyone_now else FailedPrecondition)
            try:
                instance.authorize(action, actor)
                got = None
            except (PermissionDenied, FailedPrecondition) as exc:
                got = type(exc)
            if got is not want:
                wrong.append(f"{label} {action}: expected {want and want.__name__}, got {got and got.__name__}")
    assert wrong == []


def test_the_table_covers_every_status_and_no_action_is_orphaned():
    assert set(ALLOWED) == set(Status)
    used = {a for per_status in ALLOWED.values() for actions in per_status.values() for a in actions}
    assert used == set(Action)


def test_a_refusal_says_the_status_the_step_and_what_is_allowed(calendar):
    instance = instance_at(Status.SUPPLEMENT_REQUESTED, "review", calendar)
    with pytest.raises(FailedPrecondition) as caught:
        instance.apply(Complete(), by=Official("o", "xa-a", frozenset({"review"})),
                       now=dt.datetime(2026, 10, 6, 9, 0, tzinfo=VN_TZ))
    assert str(caught.value) == (
        "cannot complete dossier C-1: it is in status 5 (Yêu cầu bổ sung giấy tờ) at step 2 'review' (review at "
        "xa-a); allowed now: supplement_received, withdrawn (the intake service); supplement_expired (the SLA sweep)")


def test_an_official_needs_the_steps_unit_and_role(calendar):
    instance = instance_at(Status.PROCESSING, "review", calendar)
    with pytest.raises(PermissionDenied, match="works at xa-b, but step 2 'review'"):
        instance.authorize(Action.COMPLETE, Official("o", "xa-b", frozenset({"review"})))
    with pytest.raises(PermissionDenied, match="does not hold the role review at xa-a"):
        instance.authorize(Action.COMPLETE, Official("o", "xa-a", frozenset({"approve"})))
    assert instance.allowed_actions(Official("o", "xa-b", frozenset({"review"}))) == []
    assert instance.allowed_actions(INTAKE) == [Action.WITHDRAWN]


# -- commands -----------------------------------------------------------------------------------


def test_commands_are_parsed_from_plain_json():
    assert parse("complete") == Complete()
    command = parse("request_supplement", {"reason": " thiếu bản sao ", "deadline": "2026-10-09T17:00:00+07:00"})
    assert command == RequestSupplement(reason="thiếu bản sao",
                                        deadline=dt.datetime(2026, 10, 9, 17, 0, tzinfo=VN_TZ))
    signed = parse("signed", {"signing_request_id": "d:sign:1", "signers": ["A", "B"], "result": {"key": "k"}})
    assert signed == Signed(signing_request_id="d:sign:1", signers=("A", "B"), result={"key": "k"})


@pytest.mark.parametrize(("action", "data", "field"), [
    ("fly", {}, "action"),
    ("complete", {"nte": "typo"}, "nte"),
    ("complete", {"note": 5}, "note"),
    ("refuse", {}, "reason"),
    ("return_previous", {"reason": "  "}, "reason"),
    ("forward", {"unit": "xa-b"}, "unit_id"),
    ("transfer", {}, "unit"),
    ("request_supplement", {"reason": "r"}, "deadline"),
    ("request_supplement", {"reason": "r", "deadline": "2026-10-09T17:00:00"}, "deadline"),
    ("request_supplement", {"reason": "r", "deadline": "next week"}, "deadline"),
    ("request_payment", {"amount": "50000"}, "amount"),
    ("request_payment", {"amount": 0}, "amount"),
    ("signed", {"signing_request_id": "s", "signers": "A"}, "signers"),
    ("signed", {"signers": ["A"]}, "signing_request_id"),
    ("signed", {"signing_request_id": "s", "result": "k"}, "result"),
    ("signing_failed", {"signing_request_id": "s"}, "reason"),
    ("return_result", {"receiver": "A"}, "channel"),
    ("return_result", {"channel": "fax", "receiver": "A"}, "channel"),
    ("return_result", {"channel": "desk"}, "receiver"),
    ("apologize", {"reason": "r"}, "new_due_at"),
    ("complete", ["note"], "fields"),
])
def test_a_malformed_command_names_its_field(action, data, field):
    with pytest.raises(InvalidArgument) as caught:
        parse(action, data)
    assert caught.value.field == field


def test_an_official_is_validated():
    with pytest.raises(InvalidArgument, match="official.id"):
        Official(" ", "xa-a")
    with pytest.raises(InvalidArgument, match="official.roles"):
        Official("o", "xa-a", frozenset({"boss"}))
