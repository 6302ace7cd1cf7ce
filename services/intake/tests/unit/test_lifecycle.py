"""Intake's mirror of routing's progress, for public tracking: forward only, and every step shown
once in its place, whatever order routing's events arrive in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from intake.domain import lifecycle
from intake.domain.dossier import Dossier, Status

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
STEPS = [(Status.PROCESSING, "processing"), (Status.RESULT_READY, "result ready"),
         (Status.RETURNED, "result returned")]


def received_dossier() -> Dossier:
    dossier = Dossier(id="d1", request_id="r1", fingerprint="", code="000.00.00.H00-261207-0001",
                      procedure_code="1.001", receiving_unit="bim-son", unit_id="u", applicant={},
                      documents=[], received_at=T0, status=Status.SUBMITTED)
    lifecycle.record(dossier, "submitted", T0 - timedelta(minutes=1))
    dossier.status = Status.RECEIVED
    lifecycle.record(dossier, "received", T0)
    return dossier


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_progress_in_any_order_ends_returned_with_every_step_once_in_time_order(order):
    dossier = received_dossier()
    for i in order:
        status, action = STEPS[i]
        lifecycle.mirror_progress(dossier, status, action, T0 + timedelta(minutes=i + 1), f"ev-{i}")
    assert dossier.status is Status.RETURNED
    assert [row["action"] for row in dossier.history] == ["submitted", "received", "processing", "result ready",
                                                          "result returned"]
    assert [row["status"] for row in dossier.history] == ["1", "2", "4", "9", "10"]


def test_a_step_already_shown_or_the_status_already_held_changes_nothing():
    dossier = received_dossier()
    assert lifecycle.mirror_progress(dossier, Status.PROCESSING, "processing", T0 + timedelta(minutes=1), "ev-1")
    # a second assignment (another official, the next step) is processing still
    assert not lifecycle.mirror_progress(dossier, Status.PROCESSING, "processing", T0 + timedelta(minutes=2), "ev-2")
    assert lifecycle.mirror_progress(dossier, Status.RETURNED, "result returned", T0 + timedelta(minutes=4), "ev-4")
    assert not lifecycle.mirror_progress(dossier, Status.PROCESSING, "processing", T0 + timedelta(minutes=3), "ev-3")
    assert len(dossier.history) == 4 and dossier.status is Status.RETURNED


@pytest.mark.parametrize("status", [Status.WITHDRAWN, Status.STOPPED, Status.REFUSED_AT_RECEPTION])
def test_a_dossier_no_longer_processed_is_not_followed(status):
    dossier = received_dossier()
    dossier.status = status
    assert not lifecycle.mirror_progress(dossier, Status.RESULT_READY, "result ready", T0 + timedelta(minutes=2), "e")
    assert dossier.status is status and len(dossier.history) == 2
