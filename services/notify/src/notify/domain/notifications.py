"""Which public events an applicant is told about, and what they are told.

One notification per applicant per notifiable event: its id is derived from the event id and the
recipient, so a repeated event can never notify twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

NOTIFICATION_NAMESPACE = uuid.UUID("0b9e5f7e-6a43-4c2e-9b1d-5f3e2a8c7d10")

# event name → message to the applicant (Vietnamese, as the applicant reads it)
NOTIFIABLE: dict[str, str] = {
    "dossier.received": "Hồ sơ {code} đã được tiếp nhận.",
    "dossier.result_ready": "Hồ sơ {code} đã có kết quả.",
    "dossier.returned": "Kết quả hồ sơ {code} đã được trả.",
    "dossier.supplement_requested": "Hồ sơ {code} cần bổ sung giấy tờ; vui lòng xem yêu cầu và bổ sung trước hạn.",
    "dossier.payment_requested": "Hồ sơ {code}: đề nghị thực hiện nghĩa vụ tài chính (phí, lệ phí, thuế).",
    "dossier.stopped": "Hồ sơ {code} đã dừng xử lý; vui lòng xem thông báo lý do.",
    "dossier.apology_issued": "Hồ sơ {code} chậm so với ngày hẹn; cơ quan xin lỗi và hẹn lại ngày trả kết quả "
                              "(phiếu 04).",
}


@dataclass(frozen=True)
class Recipient:
    code: str  # the dossier's code
    full_name: str
    email: str
    phone: str

    @property
    def channel(self) -> str:
        """The recording channel stands in for e-mail/SMS until the real channels exist."""
        return "record"

    @property
    def address(self) -> str:
        return self.email or self.phone or self.full_name


def is_notifiable(event_name: str) -> bool:
    return event_name in NOTIFIABLE


def notification_id(event_id: str, recipient: Recipient) -> str:
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{event_id}:{recipient.code}:{recipient.address}"))


def message_for(event_name: str, code: str) -> str:
    return NOTIFIABLE[event_name].format(code=code)
