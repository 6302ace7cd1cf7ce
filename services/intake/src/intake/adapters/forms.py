"""The one-stop desk's forms of Circular 01/2018/TT-VPCP as PDFs: form 01, the receipt and
appointment (giấy tiếp nhận hồ sơ và hẹn trả kết quả), and form 03, the refusal with reasons
(phiếu từ chối tiếp nhận, giải quyết hồ sơ).

An adapter: it knows fpdf2 and qrcode, nothing of the rest of intake. The caller maps a dossier
onto :class:`~intake.domain.forms.ReceiptData` / :class:`~intake.domain.forms.RefusalData`, plain
frozen values of the domain. Text is set in embedded
DejaVu fonts so Vietnamese diacritics survive, normalised to NFC first (precomposed letters, the
glyphs the font has). Times print in Asia/Ho_Chi_Minh. The same data gives the same bytes: the
PDF's creation date is the form's own time, so a redelivered message stores the same
content-addressed object instead of a second copy.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import qrcode
from fpdf import FPDF, FontFace

from intake.application.ports import FormRenderer
from intake.domain.forms import Component, ReceiptData, RefusalData
from motcua.fonts import FONT, new_document, pdf_bytes
from motcua.vntext import dated, day

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
RECEIPT_TITLE = "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"
REFUSAL_TITLE = "PHIẾU TỪ CHỐI TIẾP NHẬN, GIẢI QUYẾT HỒ SƠ"
MARGIN = 18  # mm; A4 leaves 174 mm of text width
LEFT_COLUMN = 86  # mm: the issuing unit, beside the national motto
QR_SIZE = 28  # mm
LINE = 6  # mm, the body's line height at 11 pt
SIGNATURE_HEIGHT = 45  # mm the signature block needs, kept on one page

# -- the forms ---------------------------------------------------------------------------------


def render_receipt(receipt: ReceiptData) -> bytes:
    """Form 01 (Mẫu số 01, Thông tư 01/2018/TT-VPCP)."""
    r = receipt
    pdf = _new_pdf(r.received_at, RECEIPT_TITLE, footer=f"Mã hồ sơ: {r.code}")
    _heading(pdf, r.agency_name, r.unit_name, r.place, r.received_at)
    _title(pdf, RECEIPT_TITLE)
    _code_and_qr(pdf, r.code, f"{r.lookup_url.rstrip('/')}/{r.code}")
    _field(pdf, "Tiếp nhận hồ sơ của", r.applicant_name, bold_value=True)
    _applicant_details(pdf, r.applicant_id_number, r.applicant_address, r.applicant_phone, r.applicant_email)
    _field(pdf, "Nội dung yêu cầu giải quyết", f"{r.procedure_name} (mã thủ tục: {r.procedure_code})")
    _field(pdf, "1. Thành phần hồ sơ nộp gồm", "")
    _components_table(pdf, r.components)
    _field(pdf, "2. Thời gian giải quyết hồ sơ theo quy định", r.duration)
    _field(pdf, "3. Thời gian nhận hồ sơ", _at(r.received_at))
    _field(pdf, "4. Thời gian trả kết quả", _at(r.appointment_at), bold_value=True)
    if r.result_delivery:
        _field(pdf, "5. Nhận kết quả tại", r.result_delivery)
    _signatures(pdf, ("NGƯỜI NỘP HỒ SƠ", r.applicant_name), ("NGƯỜI TIẾP NHẬN HỒ SƠ", r.official_name))
    return pdf_bytes(pdf, "form-01")


def render_refusal(refusal: RefusalData) -> bytes:
    """Form 03 (Mẫu số 03, Thông tư 01/2018/TT-VPCP)."""
    r = refusal
    pdf = _new_pdf(r.refused_at, REFUSAL_TITLE, footer=f"Mã hồ sơ: {r.code}" if r.code else "")
    _heading(pdf, r.agency_name, r.unit_name, r.place, r.refused_at)
    _title(pdf, REFUSAL_TITLE)
    _field(pdf, "Kính gửi", r.applicant_name, bold_value=True)
    if r.code:
        _field(pdf, "Mã hồ sơ", r.code, bold_value=True)
    _field(pdf, "Đơn vị tiếp nhận", r.unit_name)
    _field(pdf, "Tiếp nhận hồ sơ của", r.applicant_name)
    _applicant_details(pdf, r.applicant_id_number, r.applicant_address)
    _field(pdf, "Nội dung yêu cầu giải quyết", f"{r.procedure_name} (mã thủ tục: {r.procedure_code})")
    _field(pdf, "Thời gian", _at(r.refused_at))
    _field(pdf, "Sau khi xem xét, hồ sơ không được tiếp nhận, giải quyết vì các lý do sau", "")
    for number, reason in enumerate(r.reasons, start=1):
        _numbered(pdf, f"{number}.", reason)
    pdf.ln(2)
    _paragraph(pdf, "Xin thông báo để Ông/Bà được biết và thực hiện./.")
    _signatures(pdf, None, ("NGƯỜI TIẾP NHẬN HỒ SƠ", r.official_name))
    return pdf_bytes(pdf, "form-03")


PDF_FORMS = FormRenderer(receipt=render_receipt, refusal=render_refusal)  # what the entrypoints inject


# -- layout helpers ----------------------------------------------------------------------------


class _Form(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "I", 8)
        self.set_text_color(90)
        self.cell(0, 5, _nfc(self.footer_text), align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Trang {self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0)


def _new_pdf(created: datetime, title: str, *, footer: str) -> _Form:
    pdf = new_document(_Form)
    pdf.footer_text = footer
    pdf.set_creation_date(created.astimezone(VIETNAM))  # one instant, one byte string
    pdf.set_creator("motcua intake")
    pdf.set_title(title)
    pdf.set_lang("vi")
    pdf.set_margins(MARGIN, 14, MARGIN)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, agency: str, unit: str, place: str, when: datetime) -> None:
    """The issuing unit on the left, the national motto on the right, each underlined by a short
    rule, then the place and date on the right."""
    top, right_x = pdf.get_y(), pdf.l_margin + LEFT_COLUMN
    right_w = pdf.epw - LEFT_COLUMN
    pdf.set_font(FONT, "", 10)
    if agency:
        pdf.multi_cell(LEFT_COLUMN, 5, _nfc(agency).upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "B", 10)
    pdf.multi_cell(LEFT_COLUMN, 5, _nfc(unit).upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    _rule(pdf, pdf.l_margin + LEFT_COLUMN / 2, 20)
    left_bottom = pdf.get_y()
    pdf.set_xy(right_x, top)
    pdf.cell(right_w, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(FONT, "B", 11)
    pdf.cell(right_w, 6, "Độc lập - Tự do - Hạnh phúc", align="C", new_x="LEFT", new_y="NEXT")
    _rule(pdf, right_x + right_w / 2, pdf.get_string_width("Độc lập - Tự do - Hạnh phúc"))
    pdf.set_xy(right_x, max(left_bottom, pdf.get_y()) + 1)
    pdf.set_font(FONT, "I", 10)
    pdf.cell(right_w, 6, _dated(place, when), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)


def _rule(pdf: FPDF, centre_x: float, width: float) -> None:
    y = pdf.get_y() + 1.2
    pdf.set_line_width(0.3)
    pdf.line(centre_x - width / 2, y, centre_x + width / 2, y)
    pdf.set_y(y + 1.5)


def _title(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT, "B", 14)
    pdf.multi_cell(0, 8, text, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _code_and_qr(pdf: FPDF, code: str, lookup: str) -> None:
    """The code in large type and where to look it up, with the QR code of the code beside them."""
    top, text_w = pdf.get_y(), pdf.epw - QR_SIZE - 4
    pdf.image(_qr_png(code), x=pdf.l_margin + pdf.epw - QR_SIZE, y=top, w=QR_SIZE, h=QR_SIZE)
    pdf.set_y(top + 2)
    pdf.set_font(FONT, "", 11)
    pdf.cell(pdf.get_string_width("Mã hồ sơ: "), 8, "Mã hồ sơ: ")
    pdf.set_font(FONT, "B", 15)
    pdf.cell(text_w - pdf.get_string_width("Mã hồ sơ: "), 8, _nfc(code), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(text_w, 5, f"Tra cứu tại: {_nfc(lookup)}", align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "I", 9)
    pdf.multi_cell(text_w, 5, "hoặc quét mã QR bên cạnh, hoặc nhập mã hồ sơ tại Cổng dịch vụ công.",
                   align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + QR_SIZE) + 4)


def _qr_png(code: str) -> BytesIO:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    qr.add_data(code)
    qr.make(fit=True)
    out = BytesIO()
    qr.make_image().save(out, format="PNG")
    out.seek(0)
    return out


def _field(pdf: FPDF, label: str, value: str, *, bold_value: bool = False) -> None:
    """``Label: value`` as one flowing paragraph, the label bold."""
    pdf.set_x(pdf.l_margin)
    pdf.set_font(FONT, "B", 11)
    pdf.write(LINE, f"{_nfc(label)}:" + (" " if value else ""))
    pdf.set_font(FONT, "B" if bold_value else "", 11)
    pdf.write(LINE, _nfc(value))
    pdf.ln(LINE + 1)


def _applicant_details(pdf: FPDF, id_number: str, address: str, phone: str = "", email: str = "") -> None:
    for label, value in (("Số định danh/CCCD", id_number), ("Địa chỉ", address),
                         ("Số điện thoại", phone), ("Thư điện tử", email)):
        if value:
            _field(pdf, f"    {label}", value)


def _numbered(pdf: FPDF, number: str, text: str) -> None:
    """An item of a numbered list, kept whole on one page."""
    pdf.set_font(FONT, "", 11)
    width = pdf.epw - 15
    lines = pdf.multi_cell(width, LINE, _nfc(text), dry_run=True, output="LINES")
    if pdf.will_page_break(len(lines) * LINE):
        pdf.add_page()
    pdf.set_x(pdf.l_margin + 6)
    pdf.cell(9, LINE, number)
    pdf.multi_cell(width, LINE, _nfc(text), new_x="LMARGIN", new_y="NEXT")


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT, "I", 11)
    pdf.multi_cell(0, LINE, _nfc(text), new_x="LMARGIN", new_y="NEXT")


def _components_table(pdf: FPDF, components: Sequence[Component]) -> None:
    """One row per component; rows wrap, and the heading repeats on a new page."""
    pdf.set_font(FONT, "", 10)
    heading = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
    with pdf.table(col_widths=(12, 112, 25, 25), text_align=("CENTER", "LEFT", "CENTER", "CENTER"),
                   line_height=5.5, padding=1.2, headings_style=heading, width=pdf.epw, v_align="TOP") as table:
        table.row(("STT", "Tên thành phần hồ sơ", "Bản chính", "Bản sao"))
        for number, (name, originals, copies) in enumerate(components, start=1):
            table.row((str(number), _nfc(name), str(originals), str(copies)))
    pdf.ln(3)


def _signatures(pdf: FPDF, left: tuple[str, str] | None, right: tuple[str, str]) -> None:
    """Titles, "(Ký và ghi rõ họ tên)", room to sign, then the names; never split over pages."""
    if pdf.will_page_break(SIGNATURE_HEIGHT):
        pdf.add_page()
    pdf.ln(4)
    half, top = pdf.epw / 2, pdf.get_y()
    for column, block in enumerate((left, right)):
        if block is None:
            continue
        x = pdf.l_margin + column * half
        pdf.set_xy(x, top)
        pdf.set_font(FONT, "B", 11)
        pdf.cell(half, LINE, block[0], align="C", new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "I", 10)
        pdf.cell(half, 5, "(Ký và ghi rõ họ tên)", align="C", new_x="LEFT", new_y="NEXT")
        pdf.set_xy(x, top + 30)
        pdf.set_font(FONT, "B", 11)
        pdf.multi_cell(half, LINE, _nfc(block[1]), align="C")
    pdf.set_xy(pdf.l_margin, top + SIGNATURE_HEIGHT - 4)


# -- text --------------------------------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _at(when: datetime) -> str:
    """``09 giờ 30 phút, ngày 25/11/2026`` (form 01's wording) in Vietnam's time."""
    local = when.astimezone(VIETNAM)
    return f"{local:%H} giờ {local:%M} phút, ngày {day(local)}"


def _dated(place: str, when: datetime) -> str:
    """``Thanh Hóa, ngày 05 tháng 02 năm 2026`` (Decree 30/2020/NĐ-CP, ``motcua.vntext``)."""
    return dated(_nfc(place) if place else "", when)
