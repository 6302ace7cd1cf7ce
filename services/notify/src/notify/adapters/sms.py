"""The SMS channel: one generic adapter for brand-name SMS gateways that take JSON over HTTPS.

POST ``url`` with ``{"from": sender, "to": phone, "text": message, "request_id": notification id}``
(field names configurable), authenticated by HTTP basic auth or a bearer token. A 2xx answer means
accepted; 4xx other than 408 and 429 is a refusal for good; 408, 429, 5xx and network errors are
retried. ``unaccented`` sends Vietnamese without diacritics (GSM-7: 160 characters per part)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from notify.domain.delivery import OutgoingNotification, PermanentDeliveryError, TransientDeliveryError
from notify.domain.notifications import unaccented

PHONE = re.compile(r"^\+?[0-9]{9,15}\Z")


@dataclass(frozen=True)
class SmsGatewayConfig:
    url: str = "http://127.0.0.1:8026/sms"
    username: str = ""
    password: str = ""
    token: str = ""
    sender: str = "MOTCUA"  # the registered brand name
    unaccented: bool = True
    timeout_s: float = 15.0
    to_field: str = "to"
    text_field: str = "text"
    sender_field: str = "from"


class HttpSmsChannel:
    def __init__(self, config: SmsGatewayConfig, session: requests.Session | None = None):
        self.config = config
        self._session = session or requests.Session()

    def payload(self, n: OutgoingNotification) -> dict:
        c = self.config
        text = unaccented(n.text) if c.unaccented else n.text
        return {c.sender_field: c.sender, c.to_field: n.address, c.text_field: text, "request_id": n.notification_id}

    def send(self, n: OutgoingNotification) -> str:
        phone = n.address.replace(" ", "").replace(".", "")
        if not PHONE.match(phone):
            raise PermanentDeliveryError("not a phone number")
        c = self.config
        headers = {"Idempotency-Key": n.notification_id}
        if c.token:
            headers["Authorization"] = f"Bearer {c.token}"
        auth = (c.username, c.password) if c.username else None
        try:
            answer = self._session.post(c.url, json={**self.payload(n), c.to_field: phone}, headers=headers,
                                        auth=auth, timeout=c.timeout_s)
        except requests.RequestException as exc:
            raise TransientDeliveryError(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        body = answer.text[:300]
        if 200 <= answer.status_code < 300:
            return f"{answer.status_code} {body}"
        if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
            raise PermanentDeliveryError(f"SMS gateway refused the message: {answer.status_code}",
                                         f"{answer.status_code} {body}")
        raise TransientDeliveryError(f"SMS gateway could not take the message now: {answer.status_code}",
                                     f"{answer.status_code} {body}")
