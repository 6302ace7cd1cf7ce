"""Forms 01 (receipt and appointment) and 03 (refusal) as PDFs.

Read back with the stock tools a citizen's or an auditor's machine has: ``pdftotext`` for the text
(every field, diacritics intact), ``pdftoppm`` for the page as printed, pyHanko's reader for the
PDF's objects. The QR code is decoded from the rendered page when the zxing-cpp decoder (a PyPI
wheel with no system libraries) is installed; otherwise that test is skipped and the image XObject
check below still runs. Render times are printed, never asserted.
"""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import time
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from motcua_dev.testing import pdf_pages
from pyhanko.pdf_utils.reader import PdfFileReader

from intake.adapters.forms import ReceiptData, RefusalData, render_receipt, render_refusal

ICT = timezone(timedelta(hours=7))
CODE = "000.00.06.H56-261125-0361"
RECEIVED = datetime(2026, 11, 25, 9, 30, tzinfo=ICT)
APPOINTMENT = datetime(2026, 12, 16, 15, 45, tzinfo=ICT)
COMPONENTS = (
    ("Đơn đề nghị cấp giấy phép xây dựng (Mẫu số 01)", 1, 0),
    ("Bản sao giấy tờ chứng minh quyền sử dụng đất", 0, 1),
    ("Bản vẽ thiết kế xây dựng", 2, 0),
)
RECEIPT = ReceiptData(
    unit_name="Bộ phận Tiếp nhận và Trả kết quả UBND Phường Ba Đình",
    code=CODE,
    applicant_name="Nguyễn Thị Hương",
    procedure_name="Cấp Giấy phép xây dựng đối với công trình không theo tuyến",
    procedure_code="1.004616",
    components=COMPONENTS,
    duration="15 ngày làm việc",
    received_at=RECEIVED,
    appointment_at=APPOINTMENT,
    lookup_url="https://dichvucong.thanhhoa.gov.vn/tra-cuu/",
    official_name="Lê Văn Minh",
    agency_name="UBND thị xã Bỉm Sơn",
    place="Thanh Hóa",
    applicant_id_number="038190012345",
    applicant_address="Số 12 phố Lê Lai, Phường Ba Đình, thị xã Bỉm Sơn, tỉnh Thanh Hóa",
    applicant_phone="0912 345 678",
    applicant_email="huong.nt@example.vn",
    result_delivery="Bộ phận Một cửa UBND Phường Ba Đình",
)
REFUSAL = RefusalData(
    unit_name="Bộ phận Tiếp nhận và Trả kết quả UBND Phường Ba Đình",
    applicant_name="Nguyễn Thị Hương",
    procedure_name="Cấp Giấy phép xây dựng đối với công trình không theo tuyến",
    procedure_code="1.004616",
    reasons=["Hồ sơ thiếu bản vẽ thiết kế xây dựng theo quy định.",
             "Đơn đề nghị không có chữ ký của người đề nghị cấp giấy phép."],
    refused_at=datetime(2026, 11, 25, 14, 5, tzinfo=ICT),
    official_name="Lê Văn Minh",
    agency_name="UBND thị xã Bỉm Sơn",
    place="Thanh Hóa",
    code="000.00.06.H56-261125-0362",
    applicant_id_number="038190012345",
    applicant_address="Số 12 phố Lê Lai, Phường Ba Đình, thị xã Bỉm Sơn, tỉnh Thanh Hóa",
)


def pdf_text(tmp_path: Path, data: bytes, *, first: int | None = None, last: int | None = None) -> str:
    """The text as the stock ``pdftotext`` extracts it, NFC, runs of whitespace (line breaks of
    wrapped text included) folded to one space."""
    path = tmp_path / "form.pdf"
    path.write_bytes(data)
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    out = subprocess.run(["pdftotext", *pages, str(path), "-"], capture_output=True, text=True, check=True).stdout
    return flat(out)


def layout_text(tmp_path: Path, data: bytes) -> str:
    """``pdftotext -layout``: table rows keep their columns on one line."""
    path = tmp_path / "form.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return unicodedata.normalize("NFC", out)


ROW = re.compile(r"^ *(\d+) {2,}(\S.*?) {2,}(\d+) {2,}(\d+)$")
CONTINUED = re.compile(r"^ {4,}(\S+(?: \S+)*)$")  # the name column alone


def table_rows(layout: str) -> list[tuple[int, str, int, int]]:
    """The component table read back from the layout: a row's first line carries the number, the
    start of the name and both counts; the lines under it carry the rest of a wrapped name."""
    rows: list[tuple[int, str, int, int]] = []
    open_row = False
    for line in layout.splitlines():
        if match := ROW.match(line):
            rows.append((int(match[1]), match[2], int(match[3]), int(match[4])))
            open_row = True
        elif open_row and (match := CONTINUED.match(line)):
            n, name, originals, copies = rows[-1]
            rows[-1] = (n, f"{name} {match[1]}", originals, copies)
        elif line.strip():
            open_row = False
    return rows


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def page_count(data: bytes) -> int:
    return int(PdfFileReader(io.BytesIO(data)).root["/Pages"]["/Count"])


def missing(text: str, expected: list[str]) -> list[str]:
    return [item for item in expected if flat(item) not in text]


def timed(render, data) -> bytes:
    start = time.perf_counter()
    pdf = render(data)
    print(f"{render.__name__}: {(time.perf_counter() - start) * 1000:.0f} ms, {len(pdf)} bytes, "
          f"{page_count(pdf)} page(s)")
    return pdf


# -- form 01 -----------------------------------------------------------------------------------


def test_the_receipt_shows_every_field_with_its_diacritics(tmp_path):
    pdf = timed(render_receipt, RECEIPT)
    assert pdf_pages(pdf) == ["A4"]  # one page, 595x842 pt, as the circular's template
    assert table_rows(layout_text(tmp_path, pdf)) == [(n, *row) for n, row in enumerate(COMPONENTS, start=1)]
    text = pdf_text(tmp_path, pdf)
    assert not missing(text, [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        "UBND THỊ XÃ BỈM SƠN", "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ UBND PHƯỜNG BA ĐÌNH",
        "Thanh Hóa, ngày 25 tháng 11 năm 2026",
        f"Mã hồ sơ: {CODE}",
        f"Tra cứu tại: https://dichvucong.thanhhoa.gov.vn/tra-cuu/{CODE}",
        "Tiếp nhận hồ sơ của: Nguyễn Thị Hương",
        "Số định danh/CCCD: 038190012345",
        "Địa chỉ: Số 12 phố Lê Lai, Phường Ba Đình, thị xã Bỉm Sơn, tỉnh Thanh Hóa",
        "Số điện thoại: 0912 345 678", "Thư điện tử: huong.nt@example.vn",
        "Cấp Giấy phép xây dựng đối với công trình không theo tuyến (mã thủ tục: 1.004616)",
        "Tên thành phần hồ sơ", "Bản chính", "Bản sao",
        "1 Đơn đề nghị cấp giấy phép xây dựng (Mẫu số 01) 1 0",
        "2 Bản sao giấy tờ chứng minh quyền sử dụng đất 0 1",
        "3 Bản vẽ thiết kế xây dựng 2 0",  # each row reads on one line
        "Thời gian giải quyết hồ sơ theo quy định: 15 ngày làm việc",
        "Thời gian nhận hồ sơ: 09 giờ 30 phút, ngày 25/11/2026",
        "Thời gian trả kết quả: 15 giờ 45 phút, ngày 16/12/2026",
        "Nhận kết quả tại: Bộ phận Một cửa UBND Phường Ba Đình",
        "NGƯỜI NỘP HỒ SƠ", "NGƯỜI TIẾP NHẬN HỒ SƠ", "(Ký và ghi rõ họ tên)", "Lê Văn Minh",
    ])


def test_optional_applicant_details_are_left_out_when_not_given(tmp_path):
    bare = dataclasses.replace(RECEIPT, applicant_id_number="", applicant_address="", applicant_phone="",
                               applicant_email="", agency_name="", place="", result_delivery="")
    text = pdf_text(tmp_path, render_receipt(bare))
    for label in ("Số định danh", "Địa chỉ:", "Số điện thoại", "Thư điện tử", "Nhận kết quả tại", "UBND THỊ XÃ"):
        assert label not in text
    assert "Ngày 25 tháng 11 năm 2026" in text
    assert f"Mã hồ sơ: {CODE}" in text and "Nguyễn Thị Hương" in text


def test_times_print_in_vietnam_whatever_zone_they_come_in(tmp_path):
    """18:00Z on 25/11 is 01:00 on 26/11 in Vietnam; February takes a leading zero in the dated
    line (Decree 30/2020)."""
    receipt = dataclasses.replace(RECEIPT, received_at=datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
                                  appointment_at=datetime(2027, 2, 4, 20, 30, tzinfo=UTC))
    text = pdf_text(tmp_path, render_receipt(receipt))
    assert "Thời gian nhận hồ sơ: 01 giờ 00 phút, ngày 26/11/2026" in text
    assert "Thời gian trả kết quả: 03 giờ 30 phút, ngày 05/02/2027" in text
    assert "Thanh Hóa, ngày 26 tháng 11 năm 2026" in text
    early = dataclasses.replace(RECEIPT, received_at=datetime(2027, 2, 5, 8, 0, tzinfo=ICT))
    assert "Thanh Hóa, ngày 05 tháng 02 năm 2027" in pdf_text(tmp_path, render_receipt(early))


def test_decomposed_input_comes_out_precomposed(tmp_path):
    """Text pasted from a system that writes NFD (base letter + combining marks) still shows and
    extracts as ordinary Vietnamese."""
    nfd = dataclasses.replace(RECEIPT, applicant_name=unicodedata.normalize("NFD", "Nguyễn Thị Hương"))
    assert "Tiếp nhận hồ sơ của: Nguyễn Thị Hương" in pdf_text(tmp_path, render_receipt(nfd))


def receipt_image_xobjects(data: bytes) -> list:
    reader = PdfFileReader(io.BytesIO(data))
    page, _ = reader.find_page_for_modification(0)
    xobjects = page.get_object()["/Resources"].get("/XObject", {})
    return [x.get_object() for x in xobjects.values() if x.get_object()["/Subtype"] == "/Image"]


def test_the_receipt_embeds_a_square_image_for_the_qr_code():
    """Runs everywhere: page 1 carries one square image XObject (fpdf2 stores the 1-bit QR PNG as
    CCITT G4, which pyHanko does not decode, hence the decoding test below)."""
    (qr,) = receipt_image_xobjects(render_receipt(RECEIPT))
    assert qr["/Width"] == qr["/Height"] >= 21  # a QR code of version 1 or more
    assert receipt_image_xobjects(render_refusal(REFUSAL)) == []  # form 03 has no QR code


def test_the_qr_code_on_the_printed_page_decodes_to_the_dossier_code():
    zxingcpp = pytest.importorskip("zxingcpp", reason="no QR decoder: pip install zxing-cpp==3.1.1")
    from PIL import Image

    pdf = render_receipt(RECEIPT)
    png = subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-"], input=pdf,
                         capture_output=True, check=True).stdout
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [(code.format, code.text) for code in found] == [(zxingcpp.BarcodeFormat.QRCode, CODE)]


def test_the_same_receipt_gives_the_same_bytes():
    first = render_receipt(RECEIPT)
    assert render_receipt(RECEIPT) == first
    # The same instant written in another zone is the same receipt.
    assert render_receipt(dataclasses.replace(RECEIPT, received_at=RECEIVED.astimezone(UTC))) == first
    assert render_receipt(dataclasses.replace(RECEIPT, code=CODE[:-1] + "2")) != first
    info = PdfFileReader(io.BytesIO(first)).trailer["/Info"]
    assert info["/CreationDate"] == "D:20261125093000+07'00'"  # the received time


def test_a_long_procedure_and_twenty_components_wrap_onto_more_pages(tmp_path):
    long_name = ("Cấp giấy phép xây dựng mới đối với công trình cấp đặc biệt, cấp I, cấp II (công trình không "
                 "theo tuyến, theo tuyến trong đô thị, tín ngưỡng, tôn giáo, tượng đài, tranh hoành tráng, "
                 "quảng cáo, nhà ở riêng lẻ, sửa chữa, cải tạo, di dời công trình) thuộc thẩm quyền cấp "
                 "giấy phép xây dựng của cơ quan cấp tỉnh, Phường Ba Đình, thị xã Bỉm Sơn")
    components = tuple(
        (f"Thành phần số {n}: bản sao có chứng thực giấy tờ hợp pháp về đất đai"
         + (" kèm bản vẽ mặt bằng, mặt cắt, mặt đứng điển hình của công trình" if n % 3 == 0 else ""),
         n % 2, (n + 1) % 3)
        for n in range(1, 21)
    )
    receipt = dataclasses.replace(RECEIPT, procedure_name=long_name, components=components)
    pdf = timed(render_receipt, receipt)
    pages = page_count(pdf)
    assert pages >= 2
    text = pdf_text(tmp_path, pdf)
    assert long_name in text
    layout = layout_text(tmp_path, pdf)
    assert table_rows(layout) == [
        (n, name, originals, copies) for n, (name, originals, copies) in enumerate(components, start=1)]
    # The table runs onto page 2, repeating its heading row there; the signature block is whole.
    assert len(re.findall(r"STT +Tên thành phần hồ sơ +Bản chính +Bản sao", layout)) >= 2
    last = pdf_text(tmp_path, pdf, first=pages, last=pages)
    assert "NGƯỜI TIẾP NHẬN HỒ SƠ (Ký và ghi rõ họ tên)" in last and "Lê Văn Minh" in last
    assert f"Trang {pages}/{pages}" in last


def test_receipt_data_refuses_naive_times_and_negative_counts():
    with pytest.raises(ValueError, match="received_at"):
        dataclasses.replace(RECEIPT, received_at=datetime(2026, 11, 25, 9, 30))
    with pytest.raises(ValueError, match="negative"):
        dataclasses.replace(RECEIPT, components=[("Đơn", -1, 0)])
    assert dataclasses.replace(RECEIPT, components=[["Đơn", 1, 0]]).components == (("Đơn", 1, 0),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECEIPT.code = "x"  # type: ignore[misc]


# -- form 03 -----------------------------------------------------------------------------------


def test_the_refusal_shows_every_field_with_its_diacritics(tmp_path):
    pdf = timed(render_refusal, REFUSAL)
    assert pdf_pages(pdf) == ["A4"]
    text = pdf_text(tmp_path, pdf)
    assert not missing(text, [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
        "PHIẾU TỪ CHỐI TIẾP NHẬN, GIẢI QUYẾT HỒ SƠ",
        "UBND THỊ XÃ BỈM SƠN", "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ UBND PHƯỜNG BA ĐÌNH",
        "Thanh Hóa, ngày 25 tháng 11 năm 2026",
        "Kính gửi: Nguyễn Thị Hương",
        "Mã hồ sơ: 000.00.06.H56-261125-0362",
        "Đơn vị tiếp nhận: Bộ phận Tiếp nhận và Trả kết quả UBND Phường Ba Đình",
        "Tiếp nhận hồ sơ của: Nguyễn Thị Hương",
        "Địa chỉ: Số 12 phố Lê Lai, Phường Ba Đình, thị xã Bỉm Sơn, tỉnh Thanh Hóa",
        "Cấp Giấy phép xây dựng đối với công trình không theo tuyến (mã thủ tục: 1.004616)",
        "Thời gian: 14 giờ 05 phút, ngày 25/11/2026",
        "vì các lý do sau:",
        "1. Hồ sơ thiếu bản vẽ thiết kế xây dựng theo quy định.",
        "2. Đơn đề nghị không có chữ ký của người đề nghị cấp giấy phép.",
        "NGƯỜI TIẾP NHẬN HỒ SƠ", "(Ký và ghi rõ họ tên)", "Lê Văn Minh",
    ])
    assert "NGƯỜI NỘP HỒ SƠ" not in text


def test_the_same_refusal_gives_the_same_bytes():
    first = render_refusal(REFUSAL)
    assert render_refusal(REFUSAL) == first
    assert render_refusal(dataclasses.replace(REFUSAL, reasons=("Khác.",))) != first
    assert PdfFileReader(io.BytesIO(first)).trailer["/Info"]["/CreationDate"] == "D:20261125140500+07'00'"


def test_a_refusal_of_a_dossier_without_code_and_with_many_reasons(tmp_path):
    reasons = [f"Lý do thứ {n}: thành phần hồ sơ không đúng mẫu quy định tại Nghị định số 15/2021/NĐ-CP "
               "của Chính phủ về quản lý dự án đầu tư xây dựng" for n in range(1, 16)]
    pdf = timed(render_refusal, dataclasses.replace(REFUSAL, code="", reasons=reasons))
    text = pdf_text(tmp_path, pdf)
    assert "Mã hồ sơ" not in text
    assert not missing(text, [f"{n}. {reason}" for n, reason in enumerate(reasons, start=1)])


def test_refusal_data_needs_a_reason_and_an_aware_time():
    with pytest.raises(ValueError, match="reason"):
        dataclasses.replace(REFUSAL, reasons=["  "])
    with pytest.raises(ValueError, match="refused_at"):
        dataclasses.replace(REFUSAL, refused_at=datetime(2026, 11, 25, 14, 5))
    assert REFUSAL.reasons == ("Hồ sơ thiếu bản vẽ thiết kế xây dựng theo quy định.",
                               "Đơn đề nghị không có chữ ký của người đề nghị cấp giấy phép.")
