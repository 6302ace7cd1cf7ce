"""The dossier (hồ sơ) as intake registers it, and the code it is known by."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
DOSSIER_NAMESPACE = uuid.UUID("6f1c7a52-3c1e-4a57-9d0e-2b8f8f1d6c01")


class Status(IntEnum):
    """The national public service portal's status codes."""

    SUBMITTED = 1
    RECEIVED = 2
    REFUSED_AT_RECEPTION = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    PAYMENT_REQUESTED = 6
    WITHDRAWN = 7
    STOPPED = 8
    RESULT_READY = 9
    RETURNED = 10


def dossier_id_for(request_id: str) -> str:
    """The same request id always names the same dossier, so a retried submission after a crash
    writes to the same keys instead of creating a second dossier."""
    return str(uuid.uuid5(DOSSIER_NAMESPACE, request_id))


def code_counter(unit_id: str, received_at: datetime) -> str:
    """Name of the atomic counter that numbers one unit's dossiers of one day."""
    return f"dossier-code:{unit_id}:{received_at.astimezone(VIETNAM):%y%m%d}"


def dossier_code(unit_id: str, received_at: datetime, sequence: int) -> str:
    """``<unit identifier>-YYMMDD-NNNN``, the date being the reception day in Vietnam."""
    if not 1 <= sequence <= 9999:
        raise ValueError(f"daily sequence {sequence} outside 1..9999")
    return f"{unit_id}-{received_at.astimezone(VIETNAM):%y%m%d}-{sequence:04d}"


@dataclass(frozen=True)
class DocumentRef:
    key: str
    sha256: str
    size: int
    media_type: str
    name: str
    component: str = ""


@dataclass
class Dossier:
    id: str
    request_id: str
    fingerprint: str
    code: str
    procedure_code: str
    receiving_unit: str  # the unit's slug ("phuong-ba-dinh")
    unit_id: str  # the receiving unit's electronic identifier
    applicant: dict[str, str]
    documents: list[DocumentRef]
    received_at: datetime | None  # when the desk accepted it (None while in status 1)
    status: Status = Status.RECEIVED
    version: int = 0
    history: list[dict[str, str]] = field(default_factory=list)
    procedure_version: int | None = None  # the catalog version received under (None: before versions)
    channel: str = "desk"  # desk | online | post
    submitted_at: datetime | None = None  # when it reached the platform (received_at: when accepted)
    due_at: datetime | None = None  # the appointment, by the working-time calendar
    previous_due_at: list[datetime] = field(default_factory=list)  # before supplements moved it
    receipt: dict | None = None  # form 01 (accepted) or form 03 (refused), as stored
    refusal_reasons: list[str] = field(default_factory=list)
    withdrawal_reason: str = ""
    # The open (or last) supplement request: reason, requested_by, requested_at, deadline (ISO 8601).
    supplement: dict[str, str] | None = None
    area: str = ""  # where it is worked: the receiving unit's district-level unit, or the province
