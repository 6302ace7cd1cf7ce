"""What the one-stop desk's forms say (Circular 01/2018/TT-VPCP): form 01, the receipt and
appointment, and form 03, the refusal with reasons, as plain frozen values. Rendering them is an
adapter's job (``intake.adapters.forms``); the use case maps a dossier onto these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

Component = tuple[str, int, int]  # (name, originals "bản chính", copies "bản sao")


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True)
class ReceiptData:
    """What form 01 shows. Optional applicant details are left out when empty."""

    unit_name: str  # the receiving unit, e.g. "Bộ phận Một cửa UBND phường Ba Đình"
    code: str  # the dossier code, also in the QR code and the lookup address
    applicant_name: str
    procedure_name: str
    procedure_code: str  # the national code, e.g. "1.004616"
    components: tuple[Component, ...]
    duration: str  # e.g. "15 ngày làm việc"
    received_at: datetime  # tz-aware; also the PDF's creation date
    appointment_at: datetime  # tz-aware
    lookup_url: str  # the code is appended: "<lookup_url>/<code>"
    official_name: str  # the official who received the dossier
    agency_name: str = ""  # the governing agency above the unit, e.g. "UBND TỈNH THANH HÓA"
    place: str = ""  # for the dated line, e.g. "Thanh Hóa" → "Thanh Hóa, ngày 25 tháng 11 năm 2026"
    applicant_id_number: str = ""  # số định danh cá nhân / CCCD, or a business's tax code
    applicant_address: str = ""
    applicant_phone: str = ""
    applicant_email: str = ""
    result_delivery: str = ""  # where/how the result is returned, e.g. "Tại Bộ phận Một cửa"

    def __post_init__(self) -> None:
        _aware("received_at", self.received_at)
        _aware("appointment_at", self.appointment_at)
        rows = tuple((str(name), int(originals), int(copies)) for name, originals, copies in self.components)
        if any(originals < 0 or copies < 0 for _, originals, copies in rows):
            raise ValueError("component counts must not be negative")
        object.__setattr__(self, "components", rows)


@dataclass(frozen=True)
class RefusalData:
    """What form 03 shows. ``code`` is given when the refused dossier had one (online)."""

    unit_name: str
    applicant_name: str
    procedure_name: str
    procedure_code: str
    reasons: tuple[str, ...]  # at least one; a list is accepted and kept as a tuple
    refused_at: datetime  # tz-aware; also the PDF's creation date
    official_name: str
    agency_name: str = ""
    place: str = ""
    code: str = ""
    applicant_id_number: str = ""
    applicant_address: str = ""

    def __post_init__(self) -> None:
        _aware("refused_at", self.refused_at)
        reasons = tuple(str(reason) for reason in self.reasons if str(reason).strip())
        if not reasons:
            raise ValueError("a refusal needs at least one reason")
        object.__setattr__(self, "reasons", reasons)
