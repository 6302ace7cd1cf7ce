"""The e-mail channel: SMTP (smtplib), plain or implicit TLS, STARTTLS and AUTH by settings, each
message a multipart/alternative of plain text and HTML. Its Message-ID derives from the
notification id: a message sent again after a crash carries the same one."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from functools import cached_property

from notify.domain.delivery import OutgoingNotification, PermanentDeliveryError, TransientDeliveryError


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    security: str = "none"  # none | starttls | tls (implicit TLS, port 465)
    username: str = ""
    password: str = ""
    sender: str = "Một cửa điện tử <motcua@example.vn>"
    timeout_s: float = 30.0
    ca_file: str = ""  # a private CA to trust (tests, internal relays); empty: the system's
    message_id_domain: str = "motcua.local"


class SmtpChannel:
    def __init__(self, config: SmtpConfig):
        self.config = config

    def message(self, n: OutgoingNotification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = n.address
        msg["Subject"] = n.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{n.notification_id}@{self.config.message_id_domain}>"
        msg["X-Motcua-Notification"] = n.notification_id
        msg.set_content(n.text)
        if n.html:
            msg.add_alternative(f"<!doctype html><html><body>{n.html}</body></html>", subtype="html")
        for attachment in n.attachments:
            maintype, _, subtype = attachment.media_type.partition("/")
            msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment.name)
        return msg

    def send(self, n: OutgoingNotification) -> str:
        try:
            Address(addr_spec=n.address)
        except (ValueError, IndexError) as exc:
            raise PermanentDeliveryError(f"not an e-mail address: {exc}") from exc
        msg = self.message(n)
        try:
            with self._connect() as smtp:
                if self.config.username:
                    smtp.login(self.config.username, self.config.password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _refusal(code, reply) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _refusal(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # a configuration problem, not the applicant's: retried until an operator fixes it
            raise TransientDeliveryError(f"SMTP authentication failed ({exc.smtp_code})",
                                         _text(exc.smtp_error)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise TransientDeliveryError(f"SMTP server lacks a required extension: {exc}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise TransientDeliveryError(f"SMTP server unreachable or failed: {type(exc).__name__}: {exc}") from exc
        if refused:
            code, reply = next(iter(refused.values()))
            raise _refusal(code, reply)
        return f"250 accepted {msg['Message-ID']}"

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        """The TLS context of every connection, made once: making one loads and parses the
        system's CA bundle (or ``ca_file``), ~25 ms of CPU, which was most of the notify worker's
        CPU when each e-mail made its own. A changed ``ca_file`` is read at the next start."""
        return ssl.create_default_context(cafile=self.config.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.security == "tls":
            return smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=self._tls)
        smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        try:
            if c.security == "starttls":
                smtp.starttls(context=self._tls)
        except Exception:
            smtp.close()
            raise
        return smtp


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _refusal(code: int, reply: bytes | str):
    """A 5xx reply is a refusal for good; 4xx (mailbox busy, greylisting) is tried again."""
    text = f"{code} {_text(reply)}"
    if 500 <= code < 600:
        return PermanentDeliveryError(f"SMTP server refused the message: {text}", text)
    return TransientDeliveryError(f"SMTP server deferred the message: {text}", text)
