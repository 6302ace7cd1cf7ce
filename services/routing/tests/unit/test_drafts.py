"""The draft result renders Vietnamese text and is reproducible (content-addressed storage)."""

import subprocess
from datetime import UTC, datetime

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
