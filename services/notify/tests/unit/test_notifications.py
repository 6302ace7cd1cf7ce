"""The domain's rules (ids, channels, retry schedule, Vietnamese formatting) and the golden test of
every template: each (channel, event) renders exactly its golden file under ``golden/``, and a
variable missing from the context fails, never renders a hole. Regenerate the golden files after
changing a template on purpose: ``MOTCUA_UPDATE_GOLDEN=1 .venv/bin/pytest services/notify/tests/unit``."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from motcua.vntext import day, vnd, when
from notify.adapters.templates import JinjaRenderer
from notify.domain.notifications import (
    NOTIFIABLE,
    Recipient,
    RetrySchedule,
    is_notifiable,
    notification_id,
    unaccented,
)

GOLDEN = Path(__file__).parent / "golden"
RENDERER = JinjaRenderer()
CONTEXT = {
    "full_name": "Nguyễn Văn An", "code": "000.00.06.H56-260504-0001",
    "procedure_name": "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ", "unit_name": "UBND thị xã Bỉm Sơn",
    "received_at": "2026-05-04T02:00:00+00:00", "due_at": "2026-05-04T09:00:00+00:00",
    "tracking_url": "https://dichvucong.example.vn/tra-cuu?ma=000.00.06.H56-260504-0001",
}
FACTS = {
    "dossier.received": {},
    "dossier.supplement_requested": {"reason": "Thiếu bản vẽ mặt bằng", "supplement_deadline": "2026-05-11T10:00:00Z",
                                     "due_at": "2026-05-20T09:00:00Z",
                                     "components": ["Bản vẽ mặt bằng công trình", "Bản sao sổ đỏ"],
                                     "form": {"key": "routing/d1/aa", "name": "phieu-yeu-cau-bo-sung-02.pdf"}},
    "dossier.payment_requested": {"amount": 1500000, "note": "lệ phí cấp phép"},
    "dossier.apology_issued": {"reason": "Cần xin ý kiến cơ quan chuyên môn",
                               "previous_due_at": "2026-05-04T09:00:00Z", "new_due_at": "2026-05-08T09:00:00Z"},
    "dossier.stopped": {"reason": "Hồ sơ không đủ điều kiện", "cause": "refused"},
    "dossier.result_ready": {"ready_at": "2026-05-04T08:30:00Z"},
    "dossier.returned": {"returned_at": "2026-05-05T03:15:00Z"},
}


def test_every_notifiable_event_has_an_email_and_an_sms_template():
    assert RENDERER.templates() == sorted((c, e) for c in ("email", "sms") for e in NOTIFIABLE)


@pytest.mark.parametrize(("channel", "event"), RENDERER.templates())
def test_golden(channel: str, event: str):
    rendered = RENDERER.render(event, channel, {**CONTEXT, **FACTS[event]})
    text = f"subject: {rendered.subject}\n--- text\n{rendered.text}\n--- html\n{rendered.html}\n"
    golden = GOLDEN / channel / f"{event}.txt"
    if os.environ.get("MOTCUA_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    assert "None" not in text and "{{" not in text


@pytest.mark.parametrize(("channel", "event"), RENDERER.templates())
def test_a_missing_variable_fails_instead_of_rendering_a_hole(channel: str, event: str):
    context = {**CONTEXT, **FACTS[event]}
    for name in ("code", "tracking_url", "unit_name" if channel == "email" else "code"):
        with pytest.raises(UndefinedError):
            RENDERER.render(event, channel, {k: v for k, v in context.items() if k != name})


def test_html_escapes_what_the_applicant_typed_and_text_keeps_it():
    rendered = RENDERER.render("dossier.received", "email", {**CONTEXT, "full_name": "A <script>&"})
    assert "A &lt;script&gt;&amp;" in rendered.html and "A <script>&" in rendered.text


def test_vietnamese_dates_and_amounts():
    assert when(datetime(2026, 5, 4, 9, 0, tzinfo=UTC)) == "16 giờ 00 ngày 04/5/2026"
    # Days below 10 and the months January and February take a leading zero (Decree 30/2020).
    assert when(datetime(2026, 12, 31, 17, 5, tzinfo=UTC)) == "00 giờ 05 ngày 01/01/2027"
    assert day(datetime(2026, 5, 4, 20, 0, tzinfo=UTC)) == "05/5/2026"
    assert when(datetime(2026, 5, 4, 9, 0)) == "16 giờ 00 ngày 04/5/2026"  # naive: UTC, as stored
    assert vnd(1500000) == "1.500.000 đồng" and vnd(0) == "0 đồng" and vnd(2000) == "2.000 đồng"
    assert unaccented("Hồ sơ đã được tiếp nhận; ĐỨC") == "Ho so da duoc tiep nhan; DUC"


def test_notifiable_events_and_stable_ids():
    assert is_notifiable("dossier.apology_issued") and not is_notifiable("dossier.step_completed")
    assert not is_notifiable("notification.sent")  # never notify about notifying
    assert notification_id("e1", "email", "a@x.vn") == notification_id("e1", "email", "a@x.vn")
    assert len({notification_id("e1", "email", "a@x.vn"), notification_id("e2", "email", "a@x.vn"),
                notification_id("e1", "sms", "0912345678")}) == 3


def test_channels_follow_the_addresses_the_applicant_gave():
    r = Recipient("c", "B", email="b@x.vn", phone="")
    assert r.addresses(("email", "sms")) == [("email", "b@x.vn")]
    assert Recipient("c", "B", "", "0912").addresses(("email", "sms")) == [("sms", "0912")]


def test_the_retry_schedule_jitters_within_bounds_then_ends():
    schedule = RetrySchedule((10, 100), jitter=0.2)
    rng = random.Random(1)
    delays = [schedule.next_delay(1, rng) for _ in range(50)]
    assert all(timedelta(seconds=8) <= d <= timedelta(seconds=12) for d in delays) and len(set(delays)) > 1
    assert schedule.next_delay(3) is None
