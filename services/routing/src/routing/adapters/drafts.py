"""The PDFs routing renders, with an embedded Unicode font so Vietnamese diacritics survive: the
draft result document (the decision the officials approved, sent to signing), form 04, the
apology with a new appointment, and form 05, the processing control slip (Circular
01/2018/TT-VPCP).

Every form the applicant or an inspector receives (02, 04, 05, the stop notice) is sealed by the
dossier's receiving unit — the one-stop desk that issues it, a commune's for a commune-received
dossier — through the ``Sealer`` port (the signing api) before it is stored: a sealing failure
fails the call or the sweep (retried), nothing unsealed is stored. The draft result is not sealed
here: it goes to signing, where the official signs it and the seal follows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fpdf import FPDF

from motcua.fonts import new_document, pdf_bytes
from motcua.objects import ObjectStore
from motcua.sealing import Sealer
from motcua.vntext import day as _day
from motcua.vntext import when as _when
from routing.domain.actions import RequestSupplement
from routing.domain.control_slip import ControlSlip, control_slip
from routing.domain.instance import WorkflowInstance


def render_draft(*, code: str, procedure_code: str, unit_id: str, title: str, dated: datetime) -> bytes:
    """The same inputs give the same bytes (the creation date is the given date), so a redelivered
    message stores the same content-addressed object instead of a second copy."""
    pdf = _letterhead(title, dated)
    for line in (f"Mã hồ sơ: {code}", f"Thủ tục: {procedure_code}", f"Đơn vị: {unit_id}"):
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return pdf_bytes(pdf, "draft")


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
    return pdf_bytes(pdf, "form-04")


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
    return pdf_bytes(pdf, "stop-notice")


SUPPLEMENT_TITLE = "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ"


def render_supplement_request(*, code: str, procedure_code: str, procedure_name: str, unit: str,
                              received_at: datetime, reason: str, components: tuple[str, ...], deadline: datetime,
                              official: str, issued_at: datetime) -> bytes:
    """Form 02 (Mẫu số 02, Thông tư 01/2018/TT-VPCP): what the applicant must add or correct, why,
    and by when. The same inputs give the same bytes."""
    pdf = _letterhead(SUPPLEMENT_TITLE, issued_at)
    procedure = f"{procedure_name} ({procedure_code})" if procedure_name else procedure_code
    lines = [f"Mã hồ sơ: {code}",
             f"Ngày {_day(received_at)}, {unit} tiếp nhận hồ sơ thủ tục {procedure}.",
             f"Sau khi xem xét, đề nghị Ông/Bà bổ sung, hoàn thiện hồ sơ. Lý do: {reason}",
             "Nội dung yêu cầu bổ sung, hoàn thiện:"]
    lines += [f"{n}. {component}" for n, component in enumerate(components, 1)] or ["(theo lý do nêu trên)"]
    lines += [f"Thời hạn bổ sung: trước {_when(deadline)}.",
              "Thời gian chờ bổ sung không tính vào thời hạn giải quyết hồ sơ theo quy trình của thủ tục.",
              f"Người yêu cầu: {official}. Ngày lập phiếu: {_when(issued_at)}."]
    for line in lines:
        pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    return pdf_bytes(pdf, "form-02")


CONTROL_SLIP_TITLE = "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ"
# Form 05's table: (heading, width in mm); A4 portrait leaves 190 mm between fpdf2's margins.
SLIP_COLUMNS = (("Tên cơ quan", 50), ("Thời gian giao, nhận hồ sơ", 52), ("Hạn xử lý", 30),
                ("Kết quả giải quyết hồ sơ (trước hạn/đúng hạn/quá hạn)", 38), ("Ghi chú", 20))


def render_control_slip(slip: ControlSlip, *, unit_names: Mapping[str, str] | None = None,
                        dated: datetime) -> bytes:
    """Form 05 (Mẫu số 05, Thông tư 01/2018/TT-VPCP): one pair of rows per hand-over — "Giao" by
    the holder before, "Nhận" by the holder after — with the time, the holder's deadline and the
    verdict of the holder who received it. ``unit_names`` shows units by name where known (the
    slug otherwise). The same slip and date give the same bytes."""
    def name(unit: str) -> str:
        return (unit_names or {}).get(unit) or unit

    pdf = _letterhead(CONTROL_SLIP_TITLE, dated)
    for line in (f"Mã hồ sơ: {slip.code}",
                 f"(Kèm theo Giấy tiếp nhận hồ sơ và hẹn trả kết quả mã số: {slip.code})",
                 f"Thủ tục: {slip.procedure_code}. Tiếp nhận: {_when(slip.received_at)} "
                 f"tại {name(slip.receiving_unit)}.",
                 f"Hẹn trả kết quả: {_when(slip.due_at)}."):
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 9)
    with pdf.table(col_widths=tuple(w for _, w in SLIP_COLUMNS), text_align="LEFT", line_height=5) as table:
        heading = table.row()
        for title, _ in SLIP_COLUMNS:
            heading.cell(title)
        for n, r in enumerate(slip.rows, 1):
            row = table.row()
            row.cell(f"{n}. Giao: {name(r.from_unit)}" + (f" ({r.from_actor})" if r.from_actor else "")
                     + f"\nNhận: {name(r.to_unit)}" + (f" — {r.step_name}" if r.step_name else ""))
            row.cell(f"{_when(r.handed_at)}")
            row.cell(_when(r.deadline))
            row.cell(r.verdict_text + (f" ({_when(r.done_at)})" if r.done_at else ""))
            row.cell("")
    return pdf_bytes(pdf, "form-05")


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


DRAFT_TITLE = "QUYẾT ĐỊNH giải quyết thủ tục hành chính"


def issuing_unit(instance: WorkflowInstance) -> str:
    """Whose seal a form of this dossier carries: the receiving unit's (its one-stop desk issues the
    forms to the applicant, whichever unit holds the step; a commune's for a commune-received dossier)."""
    return instance.receiving_unit


def sealed(sealer: Sealer, pdf: bytes, instance: WorkflowInstance, form: str) -> bytes:
    """The form sealed by its issuing unit. Called on the caller's own thread, never through the
    offload: a grpcio call from eventlet's tpool threads left the routing and intake workers' timers
    (the outbox relay, the SLA sweep) waiting forever; on the hub it only holds it for the call."""
    return sealer(pdf, issuing_unit(instance), f"{form} {instance.code}")
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

    def __init__(self, objects: ObjectStore, sealer: Sealer, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._sealer = sealer
        self._offload = offload

    def __call__(self, instance: WorkflowInstance, new_due_at: datetime, reason: str, now: datetime) -> dict[str, Any]:
        step = instance.current
        pdf = self._offload(lambda: render_apology(
            code=instance.code, procedure_code=instance.procedure_code,
            unit=step.unit if step else instance.receiving_unit,
            received_at=instance.received_at, previous_due_at=instance.promised_due_at, new_due_at=new_due_at,
            reason=reason, issued_at=now))
        pdf = sealed(self._sealer, pdf, instance, "Mẫu 04")
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "phieu-xin-loi-04.pdf"}


class SupplementForms:
    """Renders form 02 for a supplement an official requests and stores it beside the dossier's
    other objects; returns its reference. Sealed: a retried request seals anew (a new timestamp), so
    it may store a second object, of which the write keeps one."""

    def __init__(self, objects: ObjectStore, sealer: Sealer, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._sealer = sealer
        self._offload = offload

    def __call__(self, instance: WorkflowInstance, request: RequestSupplement, official: str,
                 now: datetime) -> dict[str, Any]:
        step = instance.current
        assert request.deadline is not None  # the command checks it
        pdf = self._offload(lambda: render_supplement_request(
            code=instance.code, procedure_code=instance.procedure_code, procedure_name=instance.procedure_name,
            unit=step.unit if step else instance.receiving_unit, received_at=instance.received_at,
            reason=request.reason, components=request.components, deadline=request.deadline, official=official,
            issued_at=now))
        pdf = sealed(self._sealer, pdf, instance, "Mẫu 02")
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "phieu-yeu-cau-bo-sung-02.pdf"}


class ControlSlips:
    """Renders form 05 of a returned dossier (routing's worker, from the return's
    ``routing.render_form``) and stores it beside its other objects; returns its document reference."""

    def __init__(self, objects: ObjectStore, sealer: Sealer, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._sealer = sealer
        self._offload = offload

    def __call__(self, instance: WorkflowInstance) -> dict[str, Any]:
        slip = control_slip(instance)
        pdf = self._offload(lambda: render_control_slip(slip, dated=instance.closed_at or instance.timeline[-1].at))
        pdf = sealed(self._sealer, pdf, instance, "Mẫu 05")
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "phieu-kiem-soat-05.pdf"}


class StopNotices:
    """Renders the notice to the applicant that processing stopped (refused after examination, or
    the supplement deadline passed) and stores it; returns its document reference."""

    def __init__(self, objects: ObjectStore, sealer: Sealer, offload: Callable[..., Any] = lambda f, *a: f(*a)):
        self._objects = objects
        self._sealer = sealer
        self._offload = offload

    def __call__(self, instance: WorkflowInstance, reason: str, now: datetime) -> dict[str, Any]:
        step = instance.current
        pdf = self._offload(lambda: render_stop_notice(
            code=instance.code, procedure_code=instance.procedure_code,
            unit=step.unit if step else instance.receiving_unit,
            received_at=instance.received_at, reason=reason, issued_at=now))
        pdf = sealed(self._sealer, pdf, instance, "Thông báo dừng")
        ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{instance.dossier_id}", pdf, "application/pdf")
        return {**ref.to_dict(), "name": "thong-bao-dung-xu-ly.pdf"}


def render_draft_of(instance: WorkflowInstance, unit_id: str) -> bytes:
    return render_draft(code=instance.code, procedure_code=instance.procedure_code, unit_id=unit_id,
                        title=DRAFT_TITLE, dated=instance.received_at)
