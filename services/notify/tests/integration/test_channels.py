"""The channel adapters against real servers started in the test: an SMTP server (aiosmtpd) with
STARTTLS and AUTH, with implicit TLS, refusing and deferring; an SMS gateway (HTTP) accepting,
refusing, throttling, failing and gone."""

from __future__ import annotations

import ssl

import pytest
from motcua_dev.mailbox import SmsGatewayStandIn, SmtpSink
from motcua_dev.testing import MutualTlsPki

from notify.adapters.email import SmtpChannel, SmtpConfig
from notify.adapters.sms import HttpSmsChannel, SmsGatewayConfig
from notify.domain.delivery import Attachment, OutgoingNotification, PermanentDeliveryError, TransientDeliveryError

# aiosmtpd warns of AUTH without STARTTLS even when the whole session is TLS (implicit TLS)
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]


def note(nid: str, address: str, channel: str = "email") -> OutgoingNotification:
    return OutgoingNotification(notification_id=nid, channel=channel, address=address,
                                subject="Hồ sơ 000.00.06.H56-260504-0001 đã được tiếp nhận",
                                text="Kính gửi Ông/Bà Nguyễn Văn An,\nHồ sơ đã được tiếp nhận.",
                                html="<p>Kính gửi Ông/Bà <strong>Nguyễn Văn An</strong></p>")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = MutualTlsPki.create()
    directory = tmp_path_factory.mktemp("pki")
    (directory / "cert.pem").write_bytes(pki.server_cert)
    (directory / "key.pem").write_bytes(pki.server_key)
    (directory / "ca.pem").write_bytes(pki.ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context, str(directory / "ca.pem")


def test_starttls_and_auth_deliver_html_and_text_alternatives(tmp_path, pki):
    context, ca = pki
    with SmtpSink(tmp_path, tls=context, login=("motcua", "s3cret"), hostname="localhost") as server:
        channel = SmtpChannel(SmtpConfig(host="localhost", port=server.port, security="starttls",
                                         username="motcua", password="s3cret", ca_file=ca))
        answer = channel.send(note("n-1", "an@example.vn"))
        assert answer.startswith("250") and "<n-1@motcua.local>" in answer
        (mail,) = server.messages
        assert mail["Subject"] == "Hồ sơ 000.00.06.H56-260504-0001 đã được tiếp nhận"
        assert "Nguyễn Văn An" in mail.get_body(("plain",)).get_content()
        assert "<strong>Nguyễn Văn An</strong>" in mail.get_body(("html",)).get_content()
        assert len(list(tmp_path.glob("*.eml"))) == 1
        # a wrong password is the operator's to fix: retried, not a refusal of the applicant's address
        wrong = SmtpChannel(SmtpConfig(host="localhost", port=server.port, security="starttls",
                                       username="motcua", password="nope", ca_file=ca))
        with pytest.raises(TransientDeliveryError, match="authentication"):
            wrong.send(note("n-2", "an@example.vn"))
        # without STARTTLS the server refuses to go on: never sent in clear
        plain = SmtpChannel(SmtpConfig(host="localhost", port=server.port, username="motcua", password="s3cret"))
        with pytest.raises(TransientDeliveryError):
            plain.send(note("n-3", "an@example.vn"))
        assert len(server.messages) == 1


def test_an_attached_form_arrives_beside_the_text_and_html(tmp_path):
    with SmtpSink(tmp_path) as server:
        form = Attachment("phieu-yeu-cau-bo-sung-02.pdf", "application/pdf", b"%PDF-1.7 mau 02")
        message = note("n-4", "an@example.vn")
        SmtpChannel(SmtpConfig(host="127.0.0.1", port=server.port)).send(
            OutgoingNotification(**{**message.__dict__, "attachments": (form,)}))
        (mail,) = server.messages
        (attached,) = list(mail.iter_attachments())
        assert (attached.get_filename(), attached.get_content_type(), attached.get_content()) == (
            "phieu-yeu-cau-bo-sung-02.pdf", "application/pdf", b"%PDF-1.7 mau 02")
        assert "Nguyễn Văn An" in mail.get_body(("plain",)).get_content()
        assert "<strong>Nguyễn Văn An</strong>" in mail.get_body(("html",)).get_content()


def test_implicit_tls_with_auth(tmp_path, pki):
    context, ca = pki
    with SmtpSink(tmp_path, tls=context, implicit_tls=True, login=("motcua", "s3cret"), hostname="localhost") as server:
        channel = SmtpChannel(SmtpConfig(host="localhost", port=server.port, security="tls",
                                         username="motcua", password="s3cret", ca_file=ca))
        assert channel.send(note("n-1", "an@example.vn")).startswith("250")
        # a client that does not trust the server's CA never sends
        untrusting = SmtpChannel(SmtpConfig(host="localhost", port=server.port, security="tls",
                                            username="motcua", password="s3cret"))
        with pytest.raises(TransientDeliveryError):
            untrusting.send(note("n-2", "an@example.vn"))
        assert server.message_ids() == ["<n-1@motcua.local>"]


def test_refused_deferred_and_unreachable(tmp_path):
    with SmtpSink(tmp_path) as server:
        channel = SmtpChannel(SmtpConfig(port=server.port))
        with pytest.raises(PermanentDeliveryError, match="550"):
            channel.send(note("n-1", "bounce@example.vn"))
        with pytest.raises(PermanentDeliveryError, match="not an e-mail address"):
            channel.send(note("n-2", "no address"))
        server.defer = True
        with pytest.raises(TransientDeliveryError, match="451"):
            channel.send(note("n-3", "an@example.vn"))
        server.defer = False
        server.down()
        with pytest.raises(TransientDeliveryError, match="unreachable"):
            channel.send(note("n-4", "an@example.vn"))
        server.up()
        channel.send(note("n-4", "an@example.vn"))
        assert server.message_ids() == ["<n-4@motcua.local>"]


def test_sms_gateway_answers(tmp_path):
    with SmsGatewayStandIn(tmp_path, token="t0ken") as gateway:
        channel = HttpSmsChannel(SmsGatewayConfig(url=gateway.url, token="t0ken", sender="UBND-BIMSON"))
        assert channel.send(note("s-1", "0912 345 678", "sms")).startswith("200")
        (sms,) = gateway.messages
        assert sms == {"from": "UBND-BIMSON", "to": "0912345678", "request_id": "s-1", "idempotency_key": "s-1",
                       "text": "Kinh gui Ong/Ba Nguyen Van An,\nHo so da duoc tiep nhan."}
        accented = HttpSmsChannel(SmsGatewayConfig(url=gateway.url, token="t0ken", unaccented=False))
        accented.send(note("s-2", "0912345678", "sms"))
        assert "Nguyễn Văn An" in gateway.messages[-1]["text"]
        with pytest.raises(PermanentDeliveryError, match="401"):
            HttpSmsChannel(SmsGatewayConfig(url=gateway.url, token="wrong")).send(note("s-3", "0912345678", "sms"))
        with pytest.raises(PermanentDeliveryError, match="not a phone number"):
            channel.send(note("s-4", "an@example.vn", "sms"))
        for status, error in ((429, TransientDeliveryError), (503, TransientDeliveryError),
                              (400, PermanentDeliveryError)):
            gateway.status = status
            with pytest.raises(error, match=str(status)):
                channel.send(note("s-5", "0912345678", "sms"))
        gateway.down()
        with pytest.raises(TransientDeliveryError, match="unreachable"):
            channel.send(note("s-6", "0912345678", "sms"))
        assert len(gateway.messages) == 2


def test_webhooks_verify_with_the_standardwebhooks_library_at_a_real_receiver():
    import json

    from motcua_dev.mailbox import WebhookReceiver

    from notify.adapters.webhooks import StandardWebhookSender
    from notify.domain.webhooks import new_secret

    old, new = new_secret(), new_secret()
    body = json.dumps({"specversion": "1.0", "id": "e-1", "type": "vn.motcua.dossier.received.v1"})
    with WebhookReceiver(old) as receiver:
        sender = StandardWebhookSender(timeout_s=5)
        assert sender.send(receiver.url, "e-1", body, [old]).startswith("200")
        # after a rotation both signatures travel: a receiver still on the old secret verifies
        assert sender.send(receiver.url, "e-2", body, [new, old]).startswith("200")
        receiver.secrets = [new]
        assert sender.send(receiver.url, "e-3", body, [new, old]).startswith("200")
        with pytest.raises(TransientDeliveryError, match="401"):
            sender.send(receiver.url, "e-4", body, [new_secret()])
        assert receiver.ids() == ["e-1", "e-2", "e-3"] and receiver.rejected == 1
        assert receiver.received[0]["event"]["id"] == "e-1"
        assert receiver.received[1]["headers"]["webhook-signature"].count("v1,") == 2
        receiver.status = 503
        with pytest.raises(TransientDeliveryError, match="503"):
            sender.send(receiver.url, "e-5", body, [new])
        receiver.down()
        with pytest.raises(TransientDeliveryError, match="unreachable"):
            sender.send(receiver.url, "e-6", body, [new])
