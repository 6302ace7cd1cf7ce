"""Form 06, the register of a receiving unit (sổ theo dõi hồ sơ, Thông tư 01/2018/TT-VPCP), as a
PDF (fpdf2, A4 landscape) and as a spreadsheet (openpyxl), from one page of
:class:`routing.application.register.RegisterPage`. The same page gives the same bytes (both are
dated at the period's last day, not at the time of asking)."""

from __future__ import annotations

import datetime as dt
import io

from fpdf import FPDF
from fpdf.enums import MethodReturnValue
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
HEADINGS = tuple(name for name, _, _ in COLUMNS)
LINE_HEIGHT = 3.5  # mm, a line of the table's 7 pt text


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
    _table_row(pdf, HEADINGS, "B")
    for n, r in enumerate(page.rows, page.first_number):
        _table_row(pdf, cells(n, r), "")
    return pdf_bytes(pdf, "register")


def _table_row(pdf: FPDF, texts: tuple[str, ...], style: str) -> None:
    """One row of the table as fpdf2's ``table()`` draws it (bordered cells, the text left-aligned
    and centred vertically, the headings again at the top of a new page), each cell's text broken
    into lines once: ``table()`` breaks it twice, for the row's height and then to write it, which
    made a page cost twice a bare render of its text. A row that does not fit below the rows
    already on a page starts the next; one taller than a whole page goes on over the next ones."""
    pdf.set_font(FONT, style, 7)
    lines = [pdf.multi_cell(width, LINE_HEIGHT, text, dry_run=True, output=MethodReturnValue.LINES) if text else []
             for (_, width, _), text in zip(COLUMNS, texts, strict=True)]
    below_headings = False
    while texts is not HEADINGS and pdf.will_page_break(LINE_HEIGHT * max(1, *map(len, lines))):
        if below_headings:  # taller than a page: the lines that fit here, the rest on the next page
            fit = int((pdf.page_break_trigger - pdf.y) // LINE_HEIGHT)
            _cells(pdf, [cell[:fit] for cell in lines])
            lines = [cell[fit:] for cell in lines]
        pdf.add_page(orientation="L")
        _table_row(pdf, HEADINGS, "B")
        pdf.set_font(FONT, style, 7)
        below_headings = True
    _cells(pdf, lines)


def _cells(pdf: FPDF, lines: list[list[str]]) -> None:
    """A row of cells holding these lines each, from the current position."""
    height = LINE_HEIGHT * max(1, *map(len, lines))
    x, y = pdf.l_margin, pdf.y
    for (_, width, _), cell_lines in zip(COLUMNS, lines, strict=True):
        pdf.rect(x, y, width, height)
        top = y + (height - LINE_HEIGHT * len(cell_lines)) / 2
        for n, line in enumerate(cell_lines):
            pdf.set_xy(x, top + n * LINE_HEIGHT)
            pdf.cell(width, LINE_HEIGHT, line)
        x += width
    pdf.set_xy(pdf.l_margin, y + height)


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
