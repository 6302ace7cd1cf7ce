"""Form 06, the register of a receiving unit (sổ theo dõi hồ sơ, Thông tư 01/2018/TT-VPCP), as a
PDF (fpdf2, A4 landscape) and as a spreadsheet (openpyxl), from one page of
:class:`routing.application.register.RegisterPage`. The same page gives the same bytes (both are
dated at the period's last day, not at the time of asking)."""

from __future__ import annotations

import datetime as dt
import io

from fpdf import FPDF
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from motcua.fonts import FONT, new_document, pdf_bytes
from motcua.vntext import day, when
from motcua.worktime import VN_TZ
from routing.application.register import RegisterPage
from routing.domain.register import RegisterRow

TITLE = "SỔ THEO DÕI HỒ SƠ"
# (heading, PDF width in mm, spreadsheet width in characters); A4 landscape leaves 277 mm.
COLUMNS = (("STT", 9, 6), ("Mã hồ sơ", 42, 26), ("Tên thủ tục hành chính", 32, 40),
           ("Tên cá nhân, tổ chức", 22, 26), ("Địa chỉ, số điện thoại", 28, 32), ("Cơ quan chủ trì giải quyết", 20, 22),
           ("Nhận hồ sơ", 20, 20), ("Hẹn trả kết quả", 20, 20), ("Chuyển hồ sơ đến cơ quan giải quyết", 20, 20),
           ("Nhận kết quả từ cơ quan giải quyết", 20, 20), ("Trả kết quả cho cá nhân, tổ chức", 20, 20),
           ("Ghi chú", 24, 30))


def cells(number: int, r: RegisterRow) -> tuple[str, ...]:
    """One row of the register as text, column by column."""
    def at(t: dt.datetime | None) -> str:
        return when(t) if t is not None else ""

    procedure = f"{r.procedure_name} ({r.procedure_code})" if r.procedure_name else r.procedure_code
    return (str(number), r.code, procedure, r.applicant_name, r.applicant_contact, r.deciding_unit,
            at(r.received_at), at(r.due_at), at(r.sent_at), at(r.result_at), at(r.returned_at), r.note)


def _heading(page: RegisterPage, unit_name: str) -> tuple[str, str]:
    return (f"{TITLE} — {unit_name or page.unit}",
            f"Từ ngày {day(page.period.start)} đến ngày {day(page.period.end)}")


def _dated(page: RegisterPage) -> dt.datetime:
    return dt.datetime.combine(page.period.end, dt.time(17), VN_TZ)


def register_pdf(page: RegisterPage, unit_name: str = "") -> bytes:
    pdf = new_document(FPDF, "A4")
    pdf.set_creation_date(_dated(page))
    pdf.set_creator("motcua routing")
    pdf.set_margins(10, 10, 10)
    pdf.add_page(orientation="L")
    title, period = _heading(page, unit_name)
    pdf.set_font(FONT, "B", 13)
    pdf.cell(0, 8, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.cell(0, 6, period, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, "", 7)
    with pdf.table(col_widths=tuple(w for _, w, _ in COLUMNS), text_align="LEFT", line_height=3.5) as table:
        heading = table.row()
        for name, _, _ in COLUMNS:
            heading.cell(name)
        for n, r in enumerate(page.rows, page.first_number):
            row = table.row()
            for text in cells(n, r):
                row.cell(text)
    return pdf_bytes(pdf, "register")


def register_xlsx(page: RegisterPage, unit_name: str = "") -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "So theo doi ho so"
    title, period = _heading(page, unit_name)
    sheet.append([title])
    sheet.append([period])
    sheet.append([name for name, _, _ in COLUMNS])
    for cell in sheet[1] + sheet[3]:
        cell.font = Font(bold=True)
    for n, r in enumerate(page.rows, page.first_number):
        sheet.append(list(cells(n, r)))
    for i, (_, _, width) in enumerate(COLUMNS):
        sheet.column_dimensions[chr(ord("A") + i)].width = width
    for row in sheet.iter_rows(min_row=3):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    # Fixed document properties: the same page, the same bytes.
    book.properties.created = book.properties.modified = _dated(page).astimezone(dt.UTC).replace(tzinfo=None)
    book.properties.creator = "motcua routing"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
