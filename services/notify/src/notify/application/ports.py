"""What notify's use cases need from the outside, declared here and given by the entrypoints:
channels that deliver a rendered message, a renderer of templates, the names of procedures and
units. The adapters (SMTP, the SMS gateway's HTTP API, Jinja2, the catalog) implement them; the
values they exchange (a rendered message, a delivery's outcome) are the domain's
(:mod:`notify.domain.delivery`), so adapters depend on the domain only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from notify.domain.delivery import (  # noqa: F401 - the ports' values, re-exported for the use cases
    DeliveryError,
    OutgoingNotification,
    PermanentDeliveryError,
    Rendered,
    TransientDeliveryError,
)

# Told of every delivery attempt: (channel, outcome, seconds it took); the operators' metrics.
AttemptObserver = Callable[[str, str, float], None]


def unobserved(channel: str, outcome: str, seconds: float) -> None:
    return None


class Channel(Protocol):
    def send(self, message: OutgoingNotification) -> str:
        """Deliver ``message``; returns the provider's answer once it accepted it (SMTP 250, a
        gateway's 2xx). Raises PermanentDeliveryError or TransientDeliveryError."""


class Renderer(Protocol):
    def render(self, event_name: str, channel: str, context: Mapping[str, Any]) -> Rendered:
        """The message for ``event_name`` on ``channel``; raises when a variable the template uses
        is missing (never a message with a hole in it)."""


class Directory(Protocol):
    """Names notify shows the applicant but the events do not carry."""

    def procedure_name(self, procedure_code: str) -> str: ...

    def unit_name(self, unit_slug: str) -> str: ...


@dataclass(frozen=True)
class Schemas:
    """The record schemas (opaque to the application; declared by the adapters)."""

    recipients: type
    notifications: type
    waiting: type
