"""The PDFs routing renders, with an embedded Unicode font so Vietnamese diacritics survive: the
draft result document (the decision the officials approved, sent to signing) and form 04, the
apology with a new appointment (Circular 01/2018/TT-VPCP)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fpdf import FPDF

from motcua.fonts import new_document
from motcua.objects import ObjectStore
from motcua.worktime import VN_TZ
from routing.domain.instance import WorkflowInstance


def render_draft(*, code: str, procedure_code: str, unit_id: str, title: str, dated: datetime) -> bytes:
    """The same inputs give the same bytes (the creation date is the given date), so a redelivered
    message stores the same content-addressed object instead of a second copy."""
    pdf = _letterhead(title, dated)
    for line in (f"Mã hồ sơ: {code}", f"Thủ tục: {procedure_code}", f"Đơn vị: {unit_id}"):
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def render_apology(*, code: str, procedure_code: str, unit: str, received_at: datetime, previous_due_at: datetime,
                   new_due_at: datetime, reason: str, issued_at: datetime) -> bytes:
    """Form 04 (Mẫu số 04, Thông tư 01/2018/TT-VPCP): the same inputs give the same bytes."""
    pdf = _letterhead("PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ", issued_at)
    lines = (
        f"Kính gửi: người nộp hồ sơ mã {code}.",
        f"Ngày {_day(received_at)}, {unit} tiếp nhận hồ sơ thủ tục {procedure_code}, mã hồ sơ {code}, hẹn trả "
        f"kết quả {_when(previous_due_at)}.",
        f"Tuy nhiên đến nay hồ sơ chưa được giải quyết. Lý do: {reason}",
        f"Sự chậm trễ này đã gây phiền hà cho Ông/Bà. {unit} thành thật xin lỗi và hẹn lại ngày trả kết quả: "
        f"{_when(new_due_at)}.",
        f"Ngày lập phiếu: {_when(issued_at)}.",
    )
    for line in lines:
        pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def render_stop_notice(*, code: str, procedure_code: str, unit: str, received_at: datetime, reason: str,
                       issued_at: datetime) -> bytes:
    """The notice that processing stopped (status 8), with its reason: the same inputs give the same bytes."""
    pdf = _letterhead("THÔNG BÁO VỀ VIỆC DỪNG GIẢI QUYẾT HỒ SƠ", issued_at)
    for line in (f"Kính gửi: người nộp hồ sơ mã {code}.",
                 f"Ngày {_day(received_at)}, {unit} tiếp nhận hồ sơ thủ tục {procedure_code}, mã hồ sơ {code}.",
                 f"Sau khi xem xét, cơ quan giải quyết dừng giải quyết hồ sơ. Lý do: {reason}",
                 f"Ngày thông báo: {_when(issued_at)}."):
        pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def _letterhead(title: str, dated: datetime) -> FPDF:
    pdf = new_document(FPDF)
    pdf.set_creation_date(dated)
    pdf.set_creator("motcua routing")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 8, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 12)
    pdf.cell(0, 8, "Độc lập - Tự do - Hạnh phúc", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(0, 8, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "", 11)
    return pdf


def _local(t: datetime) -> datetime:
    return t.astimezone(VN_TZ)


def _day(t: datetime) -> str:
    return f"{_local(t):%d/%m/%Y}"


def _when(t: datetime) -> str:
    return f"{_local(t):%H} giờ {_local(t):%M} ngày {_day(t)}"


DRAFT_TITLE = "QUYẾT ĐỊNH giải quyết thủ tục hành chính"
OBJECT_PREFIX = "routing"


class DraftDocuments:
    """Renders the draft result of a dossier an official approves and stores it under
    ``routing/<dossier id>/<sha256>`` (content-addressed: approving again after a failed signing
    stores nothing new). Returns its document reference, named ``ket-qua.pdf``."""

    def __init__(self, objects: ObjectStore, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._offload = offload  # CPU-heavy rendering off an eventlet hub, where there is one

    def __call__(self, instance: WorkflowInstance, now: datetime) -> dict[str, Any]:
        step = instance.current
        pdf = self._offload(render_draft_of, instance, step.unit_id if step else "")
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "ket-qua.pdf"}


class ApologyForms:
    """Renders form 04 for an apology the SLA sweep is about to issue and stores it beside the
    dossier's other objects; returns its document reference."""

    def __init__(self, objects: ObjectStore, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._offload = offload

    def __call__(self, instance: WorkflowInstance, new_due_at: datetime, reason: str, now: datetime) -> dict[str, Any]:
        step = instance.current
        pdf = self._offload(lambda: render_apology(
            code=instance.code, procedure_code=instance.procedure_code,
            unit=step.unit if step else instance.receiving_unit,
            received_at=instance.received_at, previous_due_at=instance.promised_due_at, new_due_at=new_due_at,
            reason=reason, issued_at=now))
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "phieu-xin-loi-04.pdf"}


class StopNotices:
    """Renders the notice to the applicant that processing stopped (refused after examination, or
    the supplement deadline passed) and stores it; returns its document reference."""

    def __init__(self, objects: ObjectStore, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._offload = offload

    def __call__(self, instance: WorkflowInstance, reason: str, now: datetime) -> dict[str, Any]:
        step = instance.current
        pdf = self._offload(lambda: render_stop_notice(
            code=instance.code, procedure_code=instance.procedure_code,
            unit=step.unit if step else instance.receiving_unit,
            received_at=instance.received_at, reason=reason, issued_at=now))
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "thong-bao-dung-xu-ly.pdf"}


def render_draft_of(instance: WorkflowInstance, unit_id: str) -> bytes:
    return render_draft(code=instance.code, procedure_code=instance.procedure_code, unit_id=unit_id,
                        title=DRAFT_TITLE, dated=instance.received_at)
