"""The draft result renders Vietnamese text and is reproducible (content-addressed storage)."""

import subprocess
from datetime import UTC, datetime

import pytest

from routing.adapters.drafts import render_draft

DATED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def draft(code: str = "000.00.06.H56-261125-0001") -> bytes:
    return render_draft(code=code, procedure_code="1.004616", unit_id="000.00.06.H56",
                        title="QUYẾT ĐỊNH giải quyết thủ tục hành chính", dated=DATED)


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
