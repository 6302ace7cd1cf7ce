"""Which public events an applicant is told about, on which channels, and how a delivery is retried.

One notification per (event, recipient, channel): its id derives from the event id, the channel
and the address, so a repeated event can never notify twice. A notification moves
``pending → sending → delivered | failed``; every attempt is kept.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

NOTIFICATION_NAMESPACE = uuid.UUID("0b9e5f7e-6a43-4c2e-9b1d-5f3e2a8c7d10")

EMAIL = "email"
SMS = "sms"
CHANNELS = (EMAIL, SMS)

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
STATUSES = (PENDING, SENDING, DELIVERED, FAILED)

# The events the applicant is told about (DOMAIN.md: receipt and appointment, supplement request,
# financial obligation, refusal/stop, apology with the new date (form 04), result ready, returned).
NOTIFIABLE: tuple[str, ...] = (
    "dossier.received",
    "dossier.supplement_requested",
    "dossier.payment_requested",
    "dossier.apology_issued",
    "dossier.stopped",
    "dossier.result_ready",
    "dossier.returned",
)


@dataclass(frozen=True)
class Recipient:
    """How to reach the applicant of one dossier, as the submission gave it."""

    code: str  # the dossier's code
    full_name: str
    email: str = ""
    phone: str = ""

    def addresses(self, channels: Iterable[str]) -> list[tuple[str, str]]:
        """(channel, address) for each wanted channel the applicant gave an address for."""
        given = {EMAIL: self.email.strip(), SMS: self.phone.strip()}
        return [(channel, given[channel]) for channel in channels if given.get(channel)]


@dataclass(frozen=True)
class NotifyPolicy:
    """Which events notify and on which channels: a default, and overrides per procedure code."""

    events: tuple[str, ...] = NOTIFIABLE
    channels: tuple[str, ...] = CHANNELS
    per_procedure: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)

    def notifies(self, procedure_code: str, event_name: str) -> bool:
        rule = self.per_procedure.get(procedure_code, {})
        return event_name in tuple(rule.get("events", self.events))

    def channels_for(self, procedure_code: str) -> tuple[str, ...]:
        rule = self.per_procedure.get(procedure_code, {})
        return tuple(c for c in rule.get("channels", self.channels) if c in CHANNELS)

    @classmethod
    def from_mapping(cls, data: Mapping | None) -> NotifyPolicy:
        """From a policy file's content: ``{events: [...], channels: [...], procedures: {code:
        {events: [...], channels: [...]}}}``; unknown events or channels are refused."""
        data = dict(data or {})
        events = tuple(data.get("events", NOTIFIABLE))
        channels = tuple(data.get("channels", CHANNELS))
        procedures = {str(code): dict(rule or {}) for code, rule in (data.get("procedures") or {}).items()}
        for rule in [{"events": events, "channels": channels}, *procedures.values()]:
            bad = [e for e in rule.get("events", ()) if e not in NOTIFIABLE]
            bad += [c for c in rule.get("channels", ()) if c not in CHANNELS]
            if bad:
                raise ValueError(f"notify policy names unknown events or channels: {', '.join(map(str, bad))}")
        return cls(events=events, channels=channels, per_procedure=procedures)


def is_notifiable(event_name: str) -> bool:
    return event_name in NOTIFIABLE


def notification_id(event_id: str, channel: str, address: str) -> str:
    """The notification of event ``event_id`` on ``channel`` to ``address``: the same id for every
    delivery of that event, so it is created once."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{event_id}:{channel}:{address}"))


@dataclass(frozen=True)
class RetrySchedule:
    """Delays before each retry of one channel (attempt 1 failed → ``delays[0]``), with jitter."""

    delays_s: tuple[float, ...]
    jitter: float = 0.2  # ± this fraction of each delay

    def next_delay(self, failed_attempts: int, rng: random.Random | None = None) -> timedelta | None:
        """The wait before the next attempt after ``failed_attempts`` failed ones; None when the
        schedule is spent (the notification has failed for good)."""
        if failed_attempts < 1 or failed_attempts > len(self.delays_s):
            return None
        base = self.delays_s[failed_attempts - 1]
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return timedelta(seconds=max(0.0, base * (1 + spread)))


def unaccented(text: str) -> str:
    """Vietnamese text without diacritics (``Hồ sơ đã được tiếp nhận`` → ``Ho so da duoc tiep
    nhan``), for SMS gateways that only take GSM-7 text."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
