"""What may happen to a dossier at the desk, in which status, and the appointment it is given.

The statuses are the national portal's codes. Intake moves a dossier 1→2 (accept) or 1→3 (refuse),
→7 (withdraw, from 2, 4, 5 or 6) and mirrors routing's progress (4, 9, 10) for public tracking.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from intake.domain.catalog import Procedure, TimeType
from intake.domain.dossier import Dossier, Status
from motcua.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from motcua.worktime import Calendar

STATUS_NAMES = {
    Status.SUBMITTED: "Mới đăng ký", Status.RECEIVED: "Được tiếp nhận",
    Status.REFUSED_AT_RECEPTION: "Không được tiếp nhận", Status.PROCESSING: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    Status.PAYMENT_REQUESTED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ", Status.STOPPED: "Dừng xử lý",
    Status.RESULT_READY: "Đã xử lý xong", Status.RETURNED: "Đã trả kết quả",
}

# action → the statuses it is allowed from (one table; FAILED_PRECONDITION otherwise)
ALLOWED_FROM: dict[str, frozenset[Status]] = {
    "accept": frozenset({Status.SUBMITTED}),
    "refuse": frozenset({Status.SUBMITTED}),
    "withdraw": frozenset({Status.RECEIVED, Status.PROCESSING, Status.SUPPLEMENT_REQUESTED,
                           Status.PAYMENT_REQUESTED}),
}

# Routing's progress as intake mirrors it, in the order a dossier moves; never backwards.
PROGRESS_ORDER = (Status.RECEIVED, Status.PROCESSING, Status.RESULT_READY, Status.RETURNED)


class Channel(StrEnum):
    DESK = "desk"
    ONLINE = "online"
    POST = "post"


def initial_status(channel: Channel) -> Status:
    """The desk accepts what it is handed; online and postal dossiers wait for it (status 1)."""
    return Status.RECEIVED if channel is Channel.DESK else Status.SUBMITTED


def check_allowed(action: str, dossier: Dossier) -> None:
    if dossier.status not in ALLOWED_FROM[action]:
        allowed = ", ".join(f"{int(s)}" for s in sorted(ALLOWED_FROM[action]))
        raise FailedPrecondition(
            f"cannot {action} dossier {dossier.code}: it is in status {int(dossier.status)} "
            f"({STATUS_NAMES[dossier.status]}); {action} is allowed from status {allowed}")


def due_date(calendar: Calendar, procedure: Procedure, received_at: datetime, channel: Channel) -> datetime:
    """The appointment: the statutory duration for the channel, counted by the calendar."""
    days = procedure.duration.days(online=channel is Channel.ONLINE)
    if TimeType(procedure.time_type) is TimeType.CALENDAR_DAYS:
        return calendar.add_calendar_days(received_at, int(days))
    return calendar.add_working_days(received_at, Decimal(str(days)))


def record(dossier: Dossier, action: str, at: datetime, request_id: str = "", event_id: str = "",
           actor: str = "") -> None:
    """Append a history row: what happened, the status after it, when, who, and what caused it."""
    dossier.history.append({"action": action, "status": str(int(dossier.status)), "at": at.isoformat(),
                            "request_id": request_id, "event_id": event_id, "actor": actor})


def handled(dossier: Dossier, request_id: str = "", event_id: str = "") -> bool:
    """Whether this request or event was already applied (a retry changes nothing)."""
    return any((request_id and row.get("request_id") == request_id)
               or (event_id and row.get("event_id") == event_id) for row in dossier.history)


def receive(dossier: Dossier, *, at: datetime, due_at: datetime, official: str, request_id: str = "") -> None:
    dossier.status, dossier.received_at, dossier.due_at = Status.RECEIVED, at, due_at
    record(dossier, "received", at, request_id, actor=official)


def refuse(dossier: Dossier, *, at: datetime, reasons: list[str], official: str, request_id: str) -> None:
    reasons = [r.strip() for r in reasons if r and r.strip()]
    if not reasons:
        raise InvalidArgument("reasons", "at least one reason is required to refuse a dossier")
    dossier.status, dossier.refusal_reasons = Status.REFUSED_AT_RECEPTION, reasons
    record(dossier, "refused", at, request_id, actor=official)


def withdraw(dossier: Dossier, *, at: datetime, reason: str, identity_number: str, request_id: str) -> None:
    if identity_number != dossier.applicant.get("identity_number"):
        raise PermissionDenied("only the applicant may withdraw the dossier: the identity number does not match")
    dossier.status, dossier.withdrawal_reason = Status.WITHDRAWN, reason.strip()
    record(dossier, "withdrawn", at, request_id)


def mirror_progress(dossier: Dossier, status: Status, action: str, at: datetime, event_id: str) -> bool:
    """Follow routing's progress for tracking; False when it would move backwards or is not ours
    to follow any more (refused, withdrawn, stopped)."""
    if dossier.status not in PROGRESS_ORDER or PROGRESS_ORDER.index(status) <= PROGRESS_ORDER.index(dossier.status):
        return False
    dossier.status = status
    record(dossier, action, at, event_id=event_id)
    return True
