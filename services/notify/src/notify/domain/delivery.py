"""What a delivery hands a channel and what a channel answers: a rendered message to one address,
accepted (the provider's answer) or refused for good or for now."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attachment:
    """A document sent with an e-mail (form 02 with a supplement request)."""

    name: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class OutgoingNotification:
    """One rendered message to one address on one channel."""

    notification_id: str  # also the idempotency key the provider sees (Message-ID, request id)
    channel: str
    address: str
    subject: str
    text: str
    html: str = ""
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str = ""


class DeliveryError(Exception):
    """The provider did not accept the message; ``response`` is what it answered, if anything."""

    def __init__(self, reason: str, response: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.response = response


class PermanentDeliveryError(DeliveryError):
    """The provider refused the message for good (a bad address, a 4xx other than 429): no retry."""


class TransientDeliveryError(DeliveryError):
    """The provider could not take it now (unreachable, 4xx SMTP reply, 429, 5xx): retried later."""
