"""What may happen to a dossier at the desk, in which status, and the appointment it is given.

The statuses are the national portal's codes. Intake moves a dossier 1→2 (accept) or 1→3 (refuse),
5→4 (the applicant supplements), →7 (withdraw, from 2, 4, 5 or 6); it records routing's supplement
requests (→5) and mirrors routing's progress (4, 9, 10) for public tracking.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from intake.domain.catalog import Procedure, SupplementPolicy, TimeType
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
    "supplement": frozenset({Status.SUPPLEMENT_REQUESTED}),
}
# Routing asks for a supplement while it processes the dossier; intake may not have heard of the
# processing yet (routing's events can overtake each other through retries), hence 2 as well.
SUPPLEMENT_REQUESTABLE = frozenset({Status.RECEIVED, Status.PROCESSING})

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


def fingerprint_of(dossier: Dossier, request_id: str) -> str:
    """The payload fingerprint the request with this id was applied with ("" if none was kept): its
    history row's, or the dossier's own for the submission (kept there before rows had one)."""
    row = _row_of(dossier, request_id)
    if row is None:
        return ""
    if row.get("fingerprint"):
        return row["fingerprint"]
    return dossier.fingerprint if request_id == dossier.request_id else ""


def remember_answer(dossier: Dossier, request_id: str, fingerprint: str, version: int) -> None:
    """Keep in the history row of ``request_id`` the fingerprint of its payload and what the dossier
    was when the change was stored at ``version``, so that a retry is given that first answer
    (:func:`first_answer`) and not the dossier as it has become since. The lists only grow, so
    their lengths are enough of them."""
    row = _row_of(dossier, request_id)
    if row is None:
        raise ValueError(f"no history row of request {request_id!r} to remember the answer in")
    row["fingerprint"] = fingerprint
    row["answer"] = {
        "version": version, "status": int(dossier.status), "history": len(dossier.history),
        "documents": len(dossier.documents), "previous_due_at": len(dossier.previous_due_at),
        "received_at": _iso(dossier.received_at), "due_at": _iso(dossier.due_at), "receipt": dossier.receipt,
        "refusal_reasons": list(dossier.refusal_reasons), "withdrawal_reason": dossier.withdrawal_reason,
        "supplement": dossier.supplement,
    }


def first_answer(dossier: Dossier, request_id: str) -> Dossier:
    """The dossier as the request with this id left it (see :func:`remember_answer`); as it is now
    when its row kept no answer (stored before rows did)."""
    row = _row_of(dossier, request_id)
    answer = (row or {}).get("answer")
    if not answer:
        return dossier
    return replace(
        dossier, version=answer["version"], status=Status(answer["status"]),
        history=dossier.history[:answer["history"]], documents=dossier.documents[:answer["documents"]],
        previous_due_at=dossier.previous_due_at[:answer["previous_due_at"]],
        received_at=_instant(answer["received_at"]), due_at=_instant(answer["due_at"]), receipt=answer["receipt"],
        refusal_reasons=list(answer["refusal_reasons"]), withdrawal_reason=answer["withdrawal_reason"],
        supplement=answer["supplement"])


def _row_of(dossier: Dossier, request_id: str) -> dict | None:
    return next((row for row in dossier.history if request_id and row.get("request_id") == request_id), None)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _instant(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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
    """Follow routing's progress for tracking; False when it changes nothing (the dossier is there
    already, or is not ours to follow any more: refused, withdrawn, stopped).

    Routing's events of one dossier can reach intake out of order (the worker handles several
    messages at once, and retries overtake): a step that arrives after a later one (result ready
    after returned) never moves the status back, but the public timeline still gets it, in its
    place by time, once."""
    if dossier.status not in PROGRESS_ORDER or status not in PROGRESS_ORDER:
        return False
    if PROGRESS_ORDER.index(status) > PROGRESS_ORDER.index(dossier.status):
        dossier.status = status
        record(dossier, action, at, event_id=event_id)
        return True
    if status == dossier.status or any(row["action"] == action for row in dossier.history):
        return False
    _record_late(dossier, status, action, at, event_id)
    return True


def _record_late(dossier: Dossier, status: Status, action: str, at: datetime, event_id: str) -> None:
    """Insert a history row for a step that arrived after later ones, where its time puts it."""
    record(dossier, action, at, event_id=event_id)
    row = dossier.history.pop()
    row["status"] = str(int(status))  # the status the step brought, not the dossier's now
    place = len(dossier.history)
    while place > 0 and datetime.fromisoformat(dossier.history[place - 1]["at"]) > at:
        place -= 1
    dossier.history.insert(place, row)


# Routing's other changes intake mirrors for tracking: event → (status, the statuses it may come from).
# Stopping after examination (8) ends a dossier from wherever processing stood; a fee or tax
# notice (6) pauses processing and its payment resumes it.
MIRRORED_CHANGES: dict[str, tuple[Status, frozenset[Status]]] = {
    "dossier.stopped": (Status.STOPPED, frozenset({Status.RECEIVED, Status.PROCESSING, Status.SUPPLEMENT_REQUESTED,
                                                   Status.PAYMENT_REQUESTED})),
    "dossier.payment_requested": (Status.PAYMENT_REQUESTED, frozenset({Status.RECEIVED, Status.PROCESSING})),
    "dossier.payment_recorded": (Status.PROCESSING, frozenset({Status.PAYMENT_REQUESTED})),
}


def mirror_change(dossier: Dossier, event_name: str, action: str, at: datetime, event_id: str) -> bool:
    """Follow one of :data:`MIRRORED_CHANGES`; False when the dossier is not in a status it comes from
    (withdrawn meanwhile, or already past it)."""
    status, sources = MIRRORED_CHANGES[event_name]
    if dossier.status not in sources:
        return False
    dossier.status = status
    record(dossier, action, at, event_id=event_id)
    return True


def request_supplement(dossier: Dossier, *, at: datetime, reason: str, requested_by: str,
                       deadline: datetime | None, event_id: str) -> bool:
    """Record routing's supplement request (→ 5); False when the dossier is past asking (withdrawn,
    stopped, finished): the request changes nothing then."""
    if dossier.status not in SUPPLEMENT_REQUESTABLE:
        return False
    dossier.status = Status.SUPPLEMENT_REQUESTED
    dossier.supplement = {"reason": reason, "requested_by": requested_by, "requested_at": at.isoformat(),
                          "deadline": deadline.isoformat() if deadline else ""}
    record(dossier, "supplement requested", at, event_id=event_id, actor=requested_by)
    return True


def supplemented_due_date(calendar: Calendar, procedure: Procedure, dossier: Dossier, at: datetime) -> datetime:
    """The appointment after the applicant supplements at ``at``, by the procedure's policy: pause
    moves it by the time spent waiting (working time, or whole days for calendar-day procedures);
    restart counts the full duration again from the resubmission."""
    if SupplementPolicy(procedure.supplement_policy) is SupplementPolicy.RESTART or dossier.due_at is None:
        return due_date(calendar, procedure, at, Channel(dossier.channel))
    requested_at = datetime.fromisoformat(dossier.supplement["requested_at"])
    if TimeType(procedure.time_type) is TimeType.CALENDAR_DAYS:
        days = (at.astimezone(calendar.tz).date() - requested_at.astimezone(calendar.tz).date()).days
        return calendar.move_calendar_due(dossier.due_at, max(days, 0))
    waited = calendar.working_time_between(requested_at, at)
    if waited <= timedelta(0):  # answered outside working hours the same evening: nothing is owed
        return dossier.due_at
    return calendar.add_working_hours(dossier.due_at, waited)


def supplement(dossier: Dossier, *, at: datetime, due_at: datetime, request_id: str) -> None:
    """The applicant answered (5 → 4): processing resumes with the new appointment; the old one is
    kept in ``previous_due_at``."""
    if dossier.due_at is not None:
        dossier.previous_due_at.append(dossier.due_at)
    dossier.status, dossier.due_at = Status.PROCESSING, due_at
    record(dossier, "supplemented", at, request_id)
