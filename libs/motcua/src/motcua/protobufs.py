"""Conversions between plain values and the shared protobuf types, used by every service."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from motcua.errors import InvalidArgument
from motcua.types.v1 import types_pb2

DOCUMENT_REF_FIELDS = ("key", "sha256", "size", "media_type", "name", "component")


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


# The instants the platform takes from a caller: far enough from datetime's limits (years 1 and
# 9999) that no date arithmetic on them (a local date, the next midnight, a working-time sum over a
# period) can overflow, and wide enough for any dossier, deadline or statistics period.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_NANOS_PER_SECOND = 1_000_000_000


def datetime_of(stamp: Timestamp, field: str = "timestamp") -> datetime:
    """The instant of a Timestamp from a request or a message; every api converts through here, so
    a Timestamp proto3 cannot represent (nanos outside 0..999,999,999, seconds outside years
    1..9999) or one outside the platform's range (``EARLIEST``..``LATEST``) is InvalidArgument
    naming ``field`` (the caller's field path), never an exception that ends INTERNAL."""
    if not 0 <= stamp.nanos < _NANOS_PER_SECOND:
        raise InvalidArgument(field, f"nanos must be in 0..{_NANOS_PER_SECOND - 1}, not {stamp.nanos}")
    if not EARLIEST.timestamp() <= stamp.seconds <= LATEST.timestamp():
        raise InvalidArgument(field, f"must lie between {EARLIEST:%Y-%m-%dT%H:%M:%SZ} and "
                                     f"{LATEST:%Y-%m-%dT%H:%M:%SZ} (seconds {stamp.seconds} is outside)")
    return stamp.ToDatetime(tzinfo=UTC)


def document_ref(ref: Mapping[str, Any]) -> types_pb2.DocumentRef:
    return types_pb2.DocumentRef(**{k: ref[k] for k in DOCUMENT_REF_FIELDS if ref.get(k) is not None})


def document_ref_dict(message: types_pb2.DocumentRef) -> dict[str, Any]:
    return {"key": message.key, "sha256": message.sha256, "size": message.size,
            "media_type": message.media_type, "name": message.name, "component": message.component}
