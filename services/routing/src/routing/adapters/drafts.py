"""Renders the draft result document (the decision the officials approved) as a PDF with an
embedded Unicode font, so Vietnamese diacritics survive."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def render_draft(*, code: str, procedure_code: str, unit_id: str, title: str, dated: datetime) -> bytes:
    """The same inputs give the same bytes (the creation date is the given date), so a redelivered
    message stores the same content-addressed object instead of a second copy."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(dated)
    pdf.set_creator("motcua routing")
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
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
    for line in (f"Mã hồ sơ: {code}", f"Thủ tục: {procedure_code}", f"Đơn vị: {unit_id}"):
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
