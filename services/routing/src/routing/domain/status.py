"""The statuses a workflow instance can be in: the national public service portal's codes.

Routing starts at 4: codes 1–3 belong to intake's reception, and intake's 2 (accepted) becomes
routing's 4 the moment routing opens the instance. Overdue is not a status (DOMAIN.md): it is
derived from the deadlines (see :mod:`routing.domain.sla`).
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    PROCESSING = 4  # Đang xử lý
    SUPPLEMENT_REQUESTED = 5  # Yêu cầu bổ sung giấy tờ
    PAYMENT_REQUESTED = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # Công dân yêu cầu rút hồ sơ (terminal)
    STOPPED = 8  # Dừng xử lý: refused after examination (terminal)
    RESULT_READY = 9  # Đã xử lý xong, not yet delivered
    RETURNED = 10  # Đã trả kết quả (terminal)

    @property
    def label(self) -> str:
        return STATUS_NAMES[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    def describe(self) -> str:
        """``4 (Đang xử lý)``: how error messages and logs name a status."""
        return f"{int(self)} ({self.label})"


STATUS_NAMES: dict[Status, str] = {
    Status.PROCESSING: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    Status.PAYMENT_REQUESTED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.RESULT_READY: "Đã xử lý xong",
    Status.RETURNED: "Đã trả kết quả",
}

TERMINAL = frozenset({Status.WITHDRAWN, Status.STOPPED, Status.RETURNED})

# Statuses in which the statutory clock runs. Under 5 the applicant holds the dossier: the pause or
# restart policy decides what the wait does to the due date, so no SLA alert runs meanwhile.
CLOCK_RUNNING = frozenset({Status.PROCESSING, Status.PAYMENT_REQUESTED, Status.RESULT_READY})
