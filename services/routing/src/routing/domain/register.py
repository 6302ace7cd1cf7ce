"""Form 06 of Circular 01/2018/TT-VPCP, the register (sổ theo dõi hồ sơ) of a receiving unit: one
row per dossier it received, in order of reception — the applicant, the procedure, the body that
decides it, when it was received and promised, when it went to that body, when the result came
back and when the applicant got it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from routing.domain.instance import WorkflowInstance
from routing.domain.process import Role
from routing.domain.status import Status

# The body that decides a dossier ("cơ quan chủ trì giải quyết"): the unit of its first step with
# the most authority.
DECIDING_ROLES = (Role.SIGN, Role.APPROVE, Role.REVIEW)


@dataclass(frozen=True)
class RegisterRow:
    code: str
    procedure_code: str
    procedure_name: str
    applicant_name: str
    applicant_contact: str  # address and phone
    deciding_unit: str
    received_at: dt.datetime
    due_at: dt.datetime  # the appointment the applicant holds
    sent_at: dt.datetime | None  # handed on from the receiving unit
    result_at: dt.datetime | None  # result ready (or processing stopped)
    returned_at: dt.datetime | None  # the applicant got it
    status: int
    note: str  # why it was stopped or withdrawn


def register_row(instance: WorkflowInstance) -> RegisterRow:
    applicant = instance.applicant
    deciding = next((s.unit for role in DECIDING_ROLES for s in instance.steps if s.role is role),
                    instance.receiving_unit)
    sent = next((h.at for h in instance.handovers if h.to_unit != instance.receiving_unit), None)
    contact = ", ".join(v for v in (applicant.get("address", ""), applicant.get("phone", "")) if v)
    return RegisterRow(
        code=instance.code, procedure_code=instance.procedure_code, procedure_name=instance.procedure_name,
        applicant_name=applicant.get("full_name", ""), applicant_contact=contact, deciding_unit=deciding,
        received_at=instance.received_at, due_at=instance.promised_due_at, sent_at=sent,
        result_at=instance.finished_at,
        returned_at=instance.closed_at if instance.status is Status.RETURNED else None,
        status=int(instance.status), note=instance.reason)
