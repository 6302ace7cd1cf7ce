"""Conversions between plain values and the shared protobuf types, used by every service."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from motcua.types.v1 import types_pb2

DOCUMENT_REF_FIELDS = ("key", "sha256", "size", "media_type", "name", "component")


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def datetime_of(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def document_ref(ref: Mapping[str, Any]) -> types_pb2.DocumentRef:
    return types_pb2.DocumentRef(**{k: ref[k] for k in DOCUMENT_REF_FIELDS if ref.get(k) is not None})


def document_ref_dict(message: types_pb2.DocumentRef) -> dict[str, Any]:
    return {"key": message.key, "sha256": message.sha256, "size": message.size,
            "media_type": message.media_type, "name": message.name, "component": message.component}
