"""The skeleton workflow: its steps, the facts it records, and the rules of its transitions."""

from datetime import UTC, datetime, timedelta

import pytest

from routing.domain.workflow import Status, Workflow, WorkflowError

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def opened() -> Workflow:
    return Workflow.open(dossier_id="d1", code="000.00.06.H56-261125-0001", district="bim-son",
                         procedure_code="1.004616", unit_id="000.00.06.H56", received_at=NOW,
                         documents=[], now=NOW)


def at_sign_step() -> Workflow:
    workflow = opened()
    for actor in ("desk", "specialist", "leader"):
        workflow.complete_current(actor, NOW)
    return workflow


def test_a_new_workflow_assigns_its_first_step():
    workflow = opened()
    assert workflow.current.name == "receive"
    assert workflow.status is Status.PROCESSING
    assert [(f.kind, f.step) for f in workflow.facts] == [("assigned", "receive")]


def test_completing_a_step_activates_the_next_and_records_both_facts():
    workflow = opened()
    workflow.complete_current("desk", NOW)
    assert workflow.current.name == "review"
    assert [(f.kind, f.step) for f in workflow.facts][1:] == [("step_completed", "receive"),
                                                              ("assigned", "review")]
    assert workflow.steps[0].actor == "desk" and workflow.steps[0].state == "done"


def test_signing_is_requested_only_at_the_sign_step():
    with pytest.raises(WorkflowError):
        opened().request_signing("sign:d1", {"key": "k"})
    workflow = at_sign_step()
    workflow.request_signing("sign:d1", {"key": "k"})
    assert workflow.facts[-1].kind == "signing_requested"


def test_the_signed_result_is_recorded_once():
    workflow = at_sign_step()
    workflow.request_signing("sign:d1", {"key": "draft"})
    later = NOW + timedelta(minutes=5)
    assert workflow.signed("sign:d1", {"key": "signed"}, ["Nguyễn Văn An", "UBND"], later) is True
    assert workflow.status is Status.RESULT_READY
    assert workflow.current.name == "return"
    facts = len(workflow.facts)
    assert workflow.signed("sign:d1", {"key": "signed"}, ["Nguyễn Văn An", "UBND"], later) is False
    assert len(workflow.facts) == facts


def test_an_unknown_signing_request_is_refused():
    workflow = at_sign_step()
    workflow.request_signing("sign:d1", {"key": "draft"})
    with pytest.raises(WorkflowError):
        workflow.signed("sign:other", {"key": "signed"}, [], NOW)


def test_only_a_ready_result_is_returned():
    workflow = at_sign_step()
    with pytest.raises(WorkflowError):
        workflow.return_result("electronic", NOW)
    workflow.request_signing("sign:d1", {"key": "draft"})
    workflow.signed("sign:d1", {"key": "signed"}, ["A"], NOW)
    workflow.return_result("electronic", NOW)
    assert workflow.status is Status.RETURNED
    assert workflow.current is None
    assert workflow.facts[-1].kind == "returned"
    assert all(step.state == "done" for step in workflow.steps)
