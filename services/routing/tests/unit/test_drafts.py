"""The draft result renders Vietnamese text and is reproducible (content-addressed storage); forms
02, 04, 05 and the stop notice hold every field with a hand-made case's values and fit one A4 page,
as their templates in Circular 01/2018/TT-VPCP do. ``tests/perf/bench_forms.py`` times these cases."""

import re
import subprocess
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from motcua_dev.testing import pdf_pages

from motcua.worktime import VN_TZ
from routing.adapters.drafts import (
    render_apology,
    render_control_slip,
    render_draft,
    render_stop_notice,
    render_supplement_request,
)
from routing.domain.control_slip import ControlSlip, SlipRow

DATED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CODE = "000.00.06.H56-261125-0361"
AT = datetime(2026, 11, 25, 9, 30, tzinfo=VN_TZ)
LATER = datetime(2026, 12, 4, 16, 0, tzinfo=VN_TZ)
UNIT = "UBND Phường Ba Đình"
DRAFT = dict(code=CODE, procedure_code="1.004616", unit_id="000.00.06.H56",
             title="QUYẾT ĐỊNH giải quyết thủ tục hành chính", dated=DATED)
SUPPLEMENT = dict(code=CODE, procedure_code="1.004616", procedure_name="Cấp Giấy phép xây dựng", unit=UNIT,
                  received_at=AT, reason="Thiếu bản vẽ thiết kế xây dựng",
                  components=("Bản vẽ thiết kế xây dựng", "Bản sao Căn cước công dân"), deadline=LATER,
                  official="Lê Văn Minh", issued_at=AT)
APOLOGY = dict(code=CODE, procedure_code="1.004616", unit=UNIT, received_at=AT, previous_due_at=AT + timedelta(days=7),
               new_due_at=LATER, reason="Chờ ý kiến của Sở Xây dựng", issued_at=AT + timedelta(days=7))
STOP = dict(code=CODE, procedure_code="1.004616", unit=UNIT, received_at=AT, reason="Quá hạn bổ sung hồ sơ",
            issued_at=LATER)
SLIP = ControlSlip(code=CODE, procedure_code="1.004616", receiving_unit="phuong-ba-dinh", received_at=AT,
                   due_at=LATER, status=10, rows=(
                       SlipRow(0, "Tiếp nhận", "phuong-ba-dinh", "Lê Văn Minh", "phuong-ba-dinh", AT,
                               AT + timedelta(hours=8), AT + timedelta(hours=1), "early"),
                       SlipRow(1, "Thẩm định", "phuong-ba-dinh", "Lê Văn Minh", "van-phong-dang-ky-dat-dai",
                               AT + timedelta(hours=1), AT + timedelta(days=5), AT + timedelta(days=5), "on_time"),
                       SlipRow(2, "Phê duyệt", "van-phong-dang-ky-dat-dai", "Trần Thị Lan", "ubnd-quan-ba-dinh",
                               AT + timedelta(days=5), AT + timedelta(days=7), AT + timedelta(days=8), "late"),
                       SlipRow(3, "Trả kết quả", "ubnd-quan-ba-dinh", "Phạm Văn Hùng", "phuong-ba-dinh",
                               AT + timedelta(days=8), LATER, None, "")))
SLIP_NAMES = {"phuong-ba-dinh": UNIT, "van-phong-dang-ky-dat-dai": "Văn phòng đăng ký đất đai"}


def text_of(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", out))  # lines wrapped by the layout joined again


def draft(code: str = "000.00.06.H56-261125-0001") -> bytes:
    return render_draft(**{**DRAFT, "code": code})


def test_the_same_inputs_give_the_same_bytes():
    assert draft() == draft()
    assert draft() != draft("000.00.06.H56-261125-0002")


def test_vietnamese_text_survives(tmp_path):
    path = tmp_path / "draft.pdf"
    path.write_bytes(draft())
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "QUYẾT ĐỊNH giải quyết thủ tục hành chính" in text
    assert "Mã hồ sơ: 000.00.06.H56-261125-0001" in text


def test_forms_are_sealed_by_the_receiving_unit_before_they_are_stored(open_social):
    from motcua_dev.testing import FakeSealer, MemoryObjects

    from motcua.errors import Unavailable
    from routing.adapters.drafts import ApologyForms, ControlSlips, StopNotices

    instance = open_social()
    objects, sealer = MemoryObjects(), FakeSealer()
    ApologyForms(objects, sealer)(instance, DATED, "Chờ ý kiến", DATED)
    StopNotices(objects, sealer)(instance, "Quá hạn bổ sung", DATED)
    ControlSlips(objects, sealer)(instance)
    assert sealer.calls == [("dong-son", f"Mẫu 04 {instance.code}"), ("dong-son", f"Thông báo dừng {instance.code}"),
                            ("dong-son", f"Mẫu 05 {instance.code}")]
    assert len(objects.objects) == 3
    # the signing api out of reach: the form fails (its caller retries), nothing unsealed is stored
    sealer.fail, objects.objects = True, {}
    issues = (lambda: ApologyForms(objects, sealer)(instance, DATED, "x", DATED),
              lambda: StopNotices(objects, sealer)(instance, "x", DATED),
              lambda: ControlSlips(objects, sealer)(instance))
    for issue in issues:
        with pytest.raises(Unavailable):
            issue()
    assert objects.objects == {}


FORMS = {  # what each form must show, from the hand-made case above
    "02": (lambda: render_supplement_request(**SUPPLEMENT), [
        "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ", f"Mã hồ sơ: {CODE}",
        "Ngày 25/11/2026, UBND Phường Ba Đình tiếp nhận hồ sơ thủ tục Cấp Giấy phép xây dựng (1.004616).",
        "Lý do: Thiếu bản vẽ thiết kế xây dựng", "1. Bản vẽ thiết kế xây dựng", "2. Bản sao Căn cước công dân",
        "Thời hạn bổ sung: trước 16 giờ 00 ngày 04/12/2026.", "Người yêu cầu: Lê Văn Minh",
        "Ngày lập phiếu: 09 giờ 30 ngày 25/11/2026"]),
    "04": (lambda: render_apology(**APOLOGY), [
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ", f"Kính gửi: người nộp hồ sơ mã {CODE}.",
        "hẹn trả kết quả 09 giờ 30 ngày 02/12/2026", "Lý do: Chờ ý kiến của Sở Xây dựng",
        "UBND Phường Ba Đình thành thật xin lỗi và hẹn lại ngày trả kết quả: 16 giờ 00 ngày 04/12/2026."]),
    "dung": (lambda: render_stop_notice(**STOP), [
        "THÔNG BÁO VỀ VIỆC DỪNG GIẢI QUYẾT HỒ SƠ", f"mã hồ sơ {CODE}", "Lý do: Quá hạn bổ sung hồ sơ",
        "Ngày thông báo: 16 giờ 00 ngày 04/12/2026."]),
    "05": (lambda: render_control_slip(SLIP, unit_names=SLIP_NAMES, dated=LATER), [
        "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ", f"Mã hồ sơ: {CODE}", "Giao: UBND Phường Ba Đình (Lê Văn Minh)",
        "Nhận: Văn phòng đăng ký đất", "Giao: Văn phòng đăng ký đất đai (Trần Thị Lan)",
        "Trước hạn", "Đúng hạn", "Quá hạn", "Đang giải quyết",
        "Hẹn trả kết quả: 16 giờ 00 ngày 04/12/2026."]),
}


@pytest.mark.parametrize("form", FORMS)
def test_each_form_shows_its_fields_and_fits_one_a4_page(form, tmp_path):
    render, expected = FORMS[form]
    pdf = render()
    text = text_of(pdf, tmp_path)
    assert [line for line in expected if line not in text] == [], text
    assert pdf_pages(pdf) == ["A4"]  # one page, 595x842 pt, as the circular's template
    assert render() == pdf
