"""Which events notify the applicant, and that one event notifies one recipient once."""

from notify.domain.notifications import Recipient, is_notifiable, message_for, notification_id

RECIPIENT = Recipient(code="000.00.06.H56-261125-0001", full_name="Nguyễn Văn A",
                      email="a@example.vn", phone="")


def test_notifiable_events():
    assert is_notifiable("dossier.received")
    assert is_notifiable("dossier.result_ready")
    assert is_notifiable("dossier.returned")
    assert not is_notifiable("dossier.step_completed")
    assert not is_notifiable("notification.sent")  # never notify about notifying


def test_the_notification_id_is_stable_per_event_and_recipient():
    assert notification_id("e1", RECIPIENT) == notification_id("e1", RECIPIENT)
    assert notification_id("e1", RECIPIENT) != notification_id("e2", RECIPIENT)
    other = Recipient(code=RECIPIENT.code, full_name="B", email="b@example.vn", phone="")
    assert notification_id("e1", RECIPIENT) != notification_id("e1", other)


def test_message_names_the_dossier():
    assert message_for("dossier.received", RECIPIENT.code) == f"Hồ sơ {RECIPIENT.code} đã được tiếp nhận."


def test_address_prefers_email_then_phone():
    assert RECIPIENT.address == "a@example.vn"
    assert Recipient("c", "B", "", "0912345678").address == "0912345678"
