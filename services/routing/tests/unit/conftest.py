"""Fixtures of the workflow engine's unit tests: the Vietnam calendar, a liên thông process like
Thanh Hóa's social protection procedure 1.001776 (commune → district → commune), and officials."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from motcua.worktime import VN_TZ, vietnam_calendar
from routing.domain.actions import Official
from routing.domain.instance import WorkflowInstance
from routing.domain.process import ProcessDefinition

UNIT_IDS = {"xa-dong-tien": "000.01.06.H56", "xa-dong-thinh": "000.02.06.H56", "huyen-dong-son": "000.00.06.H56",
            "huyen-trieu-son": "000.00.07.H56", "so-ldtbxh": "000.00.16.H56"}
LEVELS = {"xa-dong-tien": "commune", "xa-dong-thinh": "commune", "huyen-dong-son": "district",
          "huyen-trieu-son": "district", "so-ldtbxh": "province"}


def step(role: str, unit: str, share: float, forward: bool = False, name: str = "") -> dict[str, Any]:
    return {"role": role, "unit": unit, "unit_id": UNIT_IDS[unit], "level": LEVELS[unit], "share": share,
            "name": name, "forward": forward}


def definition(steps: list[dict[str, Any]], **extra: Any) -> ProcessDefinition:
    data = {"steps": steps, "time_type": "working_days", "duration_hours": 136,
            "transfer_targets": [{"unit": "so-ldtbxh", "unit_id": UNIT_IDS["so-ldtbxh"], "level": "province"},
                                 {"unit": "xa-dong-thinh", "unit_id": UNIT_IDS["xa-dong-thinh"], "level": "commune"}],
            **extra}
    return ProcessDefinition.from_dict(data)


# 1.001776: 17 working days, shares 5/35/30/10/10/5/5 %.
SOCIAL_STEPS = [
    step("receive", "xa-dong-tien", 0.05),
    step("review", "xa-dong-tien", 0.35, forward=True, name="Hội đồng xét duyệt cấp xã"),
    step("review", "huyen-dong-son", 0.30, name="Phòng LĐ-TB&XH thẩm định"),
    step("approve", "huyen-dong-son", 0.10),
    step("sign", "huyen-dong-son", 0.10, name="Chủ tịch UBND huyện ký"),
    step("seal", "huyen-dong-son", 0.05),
    step("return", "xa-dong-tien", 0.05),
]

FRIDAY_16 = dt.datetime(2026, 10, 2, 16, 0, tzinfo=VN_TZ)  # Friday 2 October 2026, 16:00


@pytest.fixture(scope="session")
def calendar():
    return vietnam_calendar()


@pytest.fixture(scope="session")
def social() -> ProcessDefinition:
    return definition(SOCIAL_STEPS)


@pytest.fixture(scope="session")
def people() -> SimpleNamespace:
    return SimpleNamespace(
        desk=Official("mc-dong-tien", "xa-dong-tien", frozenset({"receive", "return"})),
        commune_reviewer=Official("cc-dong-tien", "xa-dong-tien", frozenset({"review"})),
        other_commune_reviewer=Official("cc-dong-thinh", "xa-dong-thinh", frozenset({"review"})),
        district_reviewer=Official("cv-dong-son", "huyen-dong-son", frozenset({"review"})),
        district_reviewer_2=Official("cv2-dong-son", "huyen-dong-son", frozenset({"review"})),
        leader=Official("tp-dong-son", "huyen-dong-son", frozenset({"approve"})),
        chairman=Official("ct-dong-son", "huyen-dong-son", frozenset({"sign", "approve"})),
        province_reviewer=Official("cv-so", "so-ldtbxh", frozenset({"review"})),
    )


@pytest.fixture(scope="session")
def open_social(social, calendar):
    """A factory: a new instance of the social process received Friday 2/10/2026 16:00."""
    def make(received_at: dt.datetime = FRIDAY_16, process: ProcessDefinition | None = None) -> WorkflowInstance:
        process = process or social
        due = process.due_from(received_at, calendar)
        return WorkflowInstance.open(definition=process, dossier_id="d1", code="000.01.06.H56-261002-0001",
                                     receiving_unit="dong-son", area="dong-son", procedure_code="1.001776",
                                     received_at=received_at,
                                     due_at=due, now=received_at, calendar=calendar)
    return make
