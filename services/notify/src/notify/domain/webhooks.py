"""Webhook subscriptions: what a subscription receives, what URL it may have, how a secret looks.

Standard Webhooks (https://www.standardwebhooks.com): a secret is ``whsec_`` + base64 of 24 to 64
random bytes; the signature is HMAC-SHA256 over ``<webhook-id>.<webhook-timestamp>.<body>``.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

SUBSCRIPTION_NAMESPACE = uuid.UUID("5b0c0f4e-2f6e-4b8a-9c58-0f1f6c1a9e21")
ENABLED, DISABLED = "enabled", "disabled"
EVERYTHING = "*"
EVENT_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz_.")
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\Z")  # an area (motcua.messaging.topology)


class InvalidSubscription(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def subscription_id(owner: str, request_id: str) -> str:
    return str(uuid.uuid5(SUBSCRIPTION_NAMESPACE, f"{owner}\x00{request_id}"))


def delivery_id(event_id: str, subscription: str, round_: str = "") -> str:
    """One delivery per (event, subscription); a redelivery round (``round_``) makes new ones."""
    return str(uuid.uuid5(SUBSCRIPTION_NAMESPACE, f"{event_id}\x00{subscription}\x00{round_}"))


def matches(event_types: Iterable[str], areas: Iterable[str], event_name: str, area: str) -> bool:
    types, places = set(event_types), set(areas)
    return (EVERYTHING in types or event_name in types) and (EVERYTHING in places or area in places)


def check_filters(event_types: list[str], areas: list[str]) -> None:
    if not event_types:
        raise InvalidSubscription("event_types", "name at least one event (dossier.received…) or *")
    for name in event_types:
        if name != EVERYTHING and (name.count(".") != 1 or not set(name) <= EVENT_NAME_CHARS or len(name) > 80):
            raise InvalidSubscription("event_types", f"not an event name: {name[:80]!r}")
    if not areas:
        raise InvalidSubscription("areas", "name at least one area (bim-son…) or *")
    for area in areas:
        if area != EVERYTHING and not SLUG_RE.match(area):
            raise InvalidSubscription("areas", f"not an area: {area[:80]!r}")


def check_url_shape(url: str, allow_http: bool) -> str:
    """The URL's host when its shape is acceptable: http(s), a host, no credentials, short."""
    if len(url) > 2000:
        raise InvalidSubscription("url", "longer than 2000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidSubscription("url", f"not a URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        raise InvalidSubscription("url", "must be https://" + ("" if allow_http else " (http is not allowed here)"))
    if not parts.hostname:
        raise InvalidSubscription("url", "has no host")
    if parts.username or parts.password:
        raise InvalidSubscription("url", "must not carry credentials")
    if port == 0:
        raise InvalidSubscription("url", "port 0")
    return parts.hostname


def is_public(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
