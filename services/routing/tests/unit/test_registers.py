"""Form 06, the register, as a PDF: every row in order with every field, each page of the table
under its headings, no row cut by a page break. ``tests/perf/bench_forms.py`` times this case."""

import subprocess
from dataclasses import replace
from datetime import datetime, timedelta

from motcua_dev.testing import pdf_pages

from motcua.worktime import VN_TZ
from routing.adapters.registers import HEADINGS, register_pdf
from routing.application.register import RegisterPage
from routing.domain.kpi766 import Period
from routing.domain.register import RegisterRow

AT = datetime(2026, 11, 25, 8, 0, tzinfo=VN_TZ)


def register_page(rows: int) -> RegisterPage:
    """A page of ``rows`` dossiers whose long procedure name takes four lines of its column."""
    return RegisterPage("phuong-ba-dinh", Period(AT.date(), AT.date()), [
        RegisterRow(code=f"000.00.06.H56-261125-{n:04d}", procedure_code="1.004616",
                    procedure_name="Cấp Giấy phép xây dựng đối với công trình không theo tuyến",
                    applicant_name=f"Nguyễn Thị Hương {n}", applicant_contact="Số 12 phố Lê Lai, 0912 345 678",
                    deciding_unit="UBND thị xã Bỉm Sơn", received_at=AT + timedelta(minutes=15 * n),
                    due_at=AT + timedelta(days=21), sent_at=AT + timedelta(hours=2), result_at=None,
                    returned_at=None, status=4, note="hồ sơ ưu tiên" if n == 7 else "") for n in range(1, rows + 1)],
        1, "")


def page_texts(pdf: bytes, tmp_path) -> list[str]:
    path = tmp_path / "06.pdf"
    path.write_bytes(pdf)
    pages = len(pdf_pages(pdf))
    return [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(path), "-"], capture_output=True,
                           text=True, check=True).stdout for n in range(1, pages + 1)]


def test_every_row_in_order_each_page_under_the_headings(tmp_path):
    pages = page_texts(register_pdf(register_page(20), "UBND Phường Ba Đình"), tmp_path)
    assert len(pages) == 2  # ten rows of four lines a page of A4 landscape
    assert "SỔ THEO DÕI HỒ SƠ — UBND Phường Ba Đình" in pages[0]
    assert "Từ ngày 25/11/2026 đến ngày 25/11/2026" in pages[0]
    codes = []
    for text in pages:
        assert text.index("STT") < text.index("Mã hồ sơ") < text.index("Ghi chú") < text.index("000.00.06.H56-")
        codes += [line.split()[1] for line in text.splitlines() if "000.00.06.H56-" in line]
        # a row is whole on its page: its procedure code closes its four lines
        assert text.count("(1.004616)") == text.count("000.00.06.H56-") == 10
    assert codes == [f"000.00.06.H56-261125-{n:04d}" for n in range(1, 21)]
    assert "Nguyễn Thị" in pages[1] and "Hương 20" in pages[1] and "hồ sơ ưu tiên" in pages[0]
    assert "08 giờ 15" in pages[0] and "16/12/2026" in pages[1]


def test_a_row_taller_than_a_page_goes_on_over_the_next_pages(tmp_path):
    page = register_page(3)
    long_note = "ghi chú rất dài " * 300
    page = RegisterPage(page.unit, page.period, [page.rows[0], replace(page.rows[1], note=long_note), page.rows[2]],
                        1, "")
    pdf = register_pdf(page)
    texts = page_texts(pdf, tmp_path)
    assert set(pdf_pages(pdf)) == {"A4"} and 3 < len(texts) < 12
    assert sum(text.count("rất dài") for text in texts) == 300  # every line of the note, once
    assert all(text.index("STT") < text.index("rất dài") for text in texts[1:])  # under the headings
    assert "-0001" in texts[0] and "-0003" in texts[-1]


def test_the_headings_are_the_columns_of_form_06():
    assert HEADINGS[:3] == ("STT", "Mã hồ sơ", "Tên thủ tục hành chính") and len(HEADINGS) == 12


def test_the_same_page_gives_the_same_bytes():
    assert register_pdf(register_page(3)) == register_pdf(register_page(3))
