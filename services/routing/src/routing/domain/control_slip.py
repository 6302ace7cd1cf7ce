"""Form 05 of Circular 01/2018/TT-VPCP, the processing control slip (phiếu kiểm soát quá trình giải
quyết hồ sơ): who handed the dossier to whom and when, each holder's deadline, when the holder was
done with it, and whether that was early, on time or late by the holder's own deadline — the
document an inspector asks for.

Built from the instance's hand-overs (:class:`routing.domain.instance.HandOver`, recorded each time
a step becomes active, the dossier is forwarded or transferred, or a step is sent back). A holder is
done when the next hand-over happens; the last holder when the step is done or the dossier closed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from routing.domain.instance import HandOver, WorkflowInstance
from routing.domain.kpi766 import by_date

# The slip's verdict per row, as the circular words it.
VERDICTS = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn", "": "Đang giải quyết"}


@dataclass(frozen=True)
class SlipRow:
    step_index: int
    step_name: str
    from_unit: str
    from_actor: str
    to_unit: str
    handed_at: dt.datetime
    deadline: dt.datetime
    done_at: dt.datetime | None  # None while the holder still has it
    verdict: str  # early | on_time | late | "" (still with the holder)

    @property
    def verdict_text(self) -> str:
        return VERDICTS[self.verdict]


@dataclass(frozen=True)
class ControlSlip:
    code: str
    procedure_code: str
    receiving_unit: str
    received_at: dt.datetime
    due_at: dt.datetime
    status: int
    rows: tuple[SlipRow, ...]


def control_slip(instance: WorkflowInstance) -> ControlSlip:
    handovers = instance.handovers
    rows = tuple(_row(instance, h, handovers[i + 1] if i + 1 < len(handovers) else None)
                 for i, h in enumerate(handovers))
    return ControlSlip(code=instance.code, procedure_code=instance.procedure_code,
                       receiving_unit=instance.receiving_unit, received_at=instance.received_at,
                       due_at=instance.promised_due_at, status=int(instance.status), rows=rows)


def _row(instance: WorkflowInstance, handover: HandOver, following: HandOver | None) -> SlipRow:
    step = instance.steps[handover.step_index]
    done = following.at if following is not None else (step.done_at or instance.closed_at)
    return SlipRow(step_index=handover.step_index, step_name=handover.step_name, from_unit=handover.from_unit,
                   from_actor=handover.from_actor, to_unit=handover.to_unit, handed_at=handover.at,
                   deadline=step.deadline, done_at=done, verdict=by_date(done, step.deadline) if done else "")
