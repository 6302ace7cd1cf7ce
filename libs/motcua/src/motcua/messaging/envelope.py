"""The two kinds of message motcua sends, and how they travel over AMQP.

* :class:`CloudEvent` — a public event, CloudEvents 1.0 in binary content mode: the attributes
  travel as AMQP headers prefixed ``cloudEvents:`` (as the CloudEvents AMQP binding names them),
  the body is the protobuf ``data`` (``application/protobuf``), and ``dataschema`` names the
  protobuf message. Types look like ``vn.motcua.dossier.received.v1``. The extension attribute
  ``area`` names the area the dossier is worked in (:mod:`motcua.areas`), which is also the first
  word of the routing key; the receiving unit is in the data. Before 2026-12 the attribute was
  called ``district`` (and held the receiving unit); :func:`parse_event` still reads it.
* :class:`WorkMessage` — an internal instruction from one pipeline stage to another
  (``routing.route_dossier``); a JSON body that may change freely.

Both become an :class:`OutgoingMessage`, the form the outbox stores and the publisher sends.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError, Message

from motcua.logs import quote
from motcua.messaging import topology

SPEC_VERSION = "1.0"
HEADER_PREFIX = "cloudEvents:"
PROTOBUF = "application/protobuf"
JSON = "application/json"
# \Z, not $: "$" also matches before a trailing newline.
TYPE_RE = re.compile(r"^vn\.motcua\.(?P<name>[a-z_]+\.[a-z_]+)\.v(?P<version>[1-9][0-9]*)\Z")
TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z")
WORK_TYPE_HEADER = "motcua-work-type"
ATTEMPT_HEADER = "motcua-attempt"
WORK_SCHEMA_HEADER = "motcua-work-schema"  # the protobuf message a work body is (motcua.work.v1.*)


class InvalidEnvelope(ValueError):
    """A message that does not carry a valid CloudEvent or work message."""


def new_id() -> str:
    return str(uuid.uuid4())


def new_traceparent() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


def child_traceparent(parent: str | None) -> str:
    """Same trace, new span: how a message caused by another keeps the trace id."""
    if _is_traceparent(parent):
        return f"00-{parent[3:35]}-{uuid.uuid4().hex[:16]}-01"
    return new_traceparent()


def trace_id(traceparent: str | None) -> str | None:
    return traceparent[3:35] if _is_traceparent(traceparent) else None


@dataclass(frozen=True)
class OutgoingMessage:
    """What the outbox keeps and the publisher sends: exchange, routing key, headers, body."""

    id: str
    exchange: str
    routing_key: str
    body: bytes
    content_type: str
    headers: Mapping[str, Any] = field(default_factory=dict)

    def to_outbox(self) -> dict[str, Any]:
        return {"id": self.id, "exchange": self.exchange, "routing_key": self.routing_key,
                "body": base64.b64encode(self.body).decode("ascii"),
                "content_type": self.content_type, "headers": dict(self.headers)}

    @classmethod
    def from_outbox(cls, entry: Mapping[str, Any]) -> OutgoingMessage:
        return cls(id=entry["id"], exchange=entry["exchange"], routing_key=entry["routing_key"],
                   body=base64.b64decode(entry["body"]), content_type=entry["content_type"],
                   headers=dict(entry.get("headers") or {}))


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    area: str
    data: bytes
    dataschema: str
    traceparent: str
    datacontenttype: str = PROTOBUF

    @property
    def name(self) -> str:
        """``vn.motcua.dossier.received.v1`` → ``dossier.received``."""
        match = TYPE_RE.match(self.type)
        assert match, self.type
        return match["name"]

    @property
    def routing_key(self) -> str:
        return topology.event_routing_key(self.area, self.name)

    def headers(self) -> dict[str, str]:
        return {f"{HEADER_PREFIX}{key}": value for key, value in {
            "specversion": SPEC_VERSION, "id": self.id, "source": self.source, "type": self.type,
            "subject": self.subject, "time": self.time.isoformat().replace("+00:00", "Z"),
            "dataschema": self.dataschema, "area": self.area,
            "traceparent": self.traceparent,
        }.items()}

    def to_outgoing(self) -> OutgoingMessage:
        return OutgoingMessage(id=self.id, exchange=topology.EVENTS_EXCHANGE.name,
                               routing_key=self.routing_key, body=self.data,
                               content_type=self.datacontenttype, headers=self.headers())

    def decode(self, message_class: type[Message]) -> Message:
        return decoded(self.data, message_class, "data")


def decoded(data: bytes, message_class: type[Message], what: str) -> Message:
    """``data`` parsed as ``message_class``; InvalidEnvelope naming ``what`` when it is not one."""
    message = message_class()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidEnvelope(f"{what} is not a valid {message_class.DESCRIPTOR.full_name}") from exc
    return message


def event_type(name: str, version: int = 1) -> str:
    return f"vn.motcua.{name}.v{version}"


def build_event(*, name: str, data: Message, source: str, subject: str, area: str,
                traceparent: str | None = None, time: datetime | None = None,
                version: int = 1) -> CloudEvent:
    """A new public event whose data is ``data``; validated before it is returned."""
    event = CloudEvent(
        id=new_id(), source=source, type=event_type(name, version), subject=subject,
        time=time or datetime.now(UTC), area=area, data=data.SerializeToString(),
        dataschema=f"type.googleapis.com/{data.DESCRIPTOR.full_name}",
        traceparent=child_traceparent(traceparent),
    )
    validate(event)
    return event


def validate(event: CloudEvent) -> None:
    missing = [name for name in ("id", "source", "type", "subject", "area") if not getattr(event, name)]
    if missing:
        raise InvalidEnvelope(f"missing CloudEvents attributes: {', '.join(missing)}")
    if not TYPE_RE.match(event.type):
        raise InvalidEnvelope(f"type {event.type!r} is not vn.motcua.<area>.<event>.v<N>")
    if event.time.tzinfo is None:
        raise InvalidEnvelope("time must carry a time zone")
    if not topology.SLUG_RE.match(event.area):
        raise InvalidEnvelope(f"area {event.area[:64]!r} is not a slug")
    if not TRACEPARENT_RE.match(event.traceparent):
        raise InvalidEnvelope("traceparent is not W3C trace context")


def parse_event(body: bytes, headers: Mapping[str, Any], content_type: str | None) -> CloudEvent:
    """The CloudEvent carried by an AMQP message; raises InvalidEnvelope when it is not one."""
    attrs = {key[len(HEADER_PREFIX):]: _text(value, key) for key, value in (headers or {}).items()
             if isinstance(key, str) and key.startswith(HEADER_PREFIX)}
    if attrs.get("specversion") != SPEC_VERSION:
        raise InvalidEnvelope(f"specversion must be {SPEC_VERSION}, got {attrs.get('specversion')!r}")
    try:
        time = datetime.fromisoformat(attrs.get("time", ""))
    except ValueError as exc:
        raise InvalidEnvelope(f"time {attrs.get('time')!r} is not RFC 3339") from exc
    event = CloudEvent(
        id=attrs.get("id", ""), source=attrs.get("source", ""), type=attrs.get("type", ""),
        subject=attrs.get("subject", ""), time=time, area=attrs.get("area") or attrs.get("district", ""),
        data=body, dataschema=attrs.get("dataschema", ""), traceparent=attrs.get("traceparent", ""),
        datacontenttype=content_type or PROTOBUF,
    )
    validate(event)
    return event


@dataclass(frozen=True)
class WorkMessage:
    """An instruction to the service that owns ``queue``: ``type`` says what; ``data`` with what,
    a message of ``protos/motcua/work/v1/work.proto`` in protobuf (read it with :meth:`decode`).
    ``body``, a JSON object, is the older form, still read from a queue but no longer sent by the
    platform's own stages."""

    id: str
    type: str
    queue: str
    body: Mapping[str, Any]
    traceparent: str
    data: bytes = b""
    schema: str = ""  # the protobuf message's full name, e.g. motcua.work.v1.RouteDossier

    def to_outgoing(self) -> OutgoingMessage:
        headers = {WORK_TYPE_HEADER: self.type, "traceparent": self.traceparent, "message-id": self.id}
        if self.schema:
            return OutgoingMessage(id=self.id, exchange=topology.WORK_EXCHANGE.name, routing_key=self.queue,
                                   body=self.data, content_type=PROTOBUF,
                                   headers={**headers, WORK_SCHEMA_HEADER: self.schema})
        return OutgoingMessage(
            id=self.id, exchange=topology.WORK_EXCHANGE.name, routing_key=self.queue,
            body=json.dumps(self.body, separators=(",", ":"), sort_keys=True).encode(),
            content_type=JSON, headers=headers)

    def decode(self, message_class: type[Message]) -> Message:
        """``data`` as ``message_class``; InvalidEnvelope when it is not one (another schema named,
        undecodable bytes, or a JSON body)."""
        name = message_class.DESCRIPTOR.full_name
        if self.schema != name:
            raise InvalidEnvelope(f"work {self.type} carries {self.schema or 'JSON'}, not {name}")
        return decoded(self.data, message_class, f"work {self.type}")


def build_work(*, service: str, area: str, type: str, data: Message | None = None,
               body: Mapping[str, Any] | None = None, traceparent: str | None = None,
               id: str | None = None) -> WorkMessage:
    """Work for ``service`` in ``area``: it travels to the queue ``<service>.<area>``. ``data`` is
    its message (``motcua.work.v1``); ``body`` (JSON) only where no message exists for it."""
    if (data is None) == (body is None):
        raise ValueError("give the work's data (a protobuf message) or, for untyped work, a body")
    common = {"id": id or new_id(), "type": type, "queue": topology.queue_name(service, area),
              "traceparent": child_traceparent(traceparent)}
    if data is not None:
        return WorkMessage(**common, body={}, data=data.SerializeToString(), schema=data.DESCRIPTOR.full_name)
    return WorkMessage(**common, body=dict(body or {}))


def parse_work(body: bytes, headers: Mapping[str, Any], queue: str, content_type: str | None = None) -> WorkMessage:
    work_type = _text(headers.get(WORK_TYPE_HEADER, ""), WORK_TYPE_HEADER)
    message_id = _text(headers.get("message-id", ""), "message-id")
    if not work_type or not message_id:
        raise InvalidEnvelope("work message without type, id or object body")
    traceparent = traceparent_of(headers) or new_traceparent()
    if (content_type or "").split(";", 1)[0].strip().lower() == PROTOBUF:
        schema = _text(headers.get(WORK_SCHEMA_HEADER, ""), WORK_SCHEMA_HEADER)
        if not schema:
            raise InvalidEnvelope(f"protobuf work message without its {WORK_SCHEMA_HEADER} header")
        return WorkMessage(id=message_id, type=work_type, queue=queue, body={}, traceparent=traceparent,
                           data=bytes(body), schema=schema)
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEnvelope("work message body is not JSON") from exc
    if not isinstance(decoded, dict):
        raise InvalidEnvelope("work message without type, id or object body")
    return WorkMessage(id=message_id, type=work_type, queue=queue, body=decoded, traceparent=traceparent)


def is_event(headers: Mapping[str, Any] | None) -> bool:
    return bool(headers) and f"{HEADER_PREFIX}id" in headers


MAX_ID_BYTES = 255  # an AMQP short string: the id must fit the message-id property of our copies


def raw_message_id(headers: Mapping[Any, Any] | None) -> Any:
    """The id as a message carries it (a CloudEvent's ``cloudEvents:id``, else the ``message-id``
    header), whatever its type; None when it has none."""
    headers = headers if isinstance(headers, Mapping) else {}
    return headers.get(f"{HEADER_PREFIX}id") or headers.get("message-id") or None


def checked_message_id(headers: Mapping[Any, Any] | None) -> tuple[str, str | None]:
    """``(id, None)`` for a usable id — text, valid UTF-8, 1 to MAX_ID_BYTES bytes — or
    ``("", why not)``. Never raises, whatever the headers hold."""
    raw = raw_message_id(headers)
    if raw is None:
        return "", "message has no id"
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return "", f"message id is not UTF-8: {quote(raw, 60)}"
    if not isinstance(raw, str):
        return "", f"message id is a {type(raw).__name__}, not text: {quote(raw, 60)}"
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates, as py-amqp's surrogatepass decoding can leave
        return "", f"message id is not valid Unicode text: {quote(raw, 60)}"
    if size > MAX_ID_BYTES:
        return "", f"message id is {size} bytes long (at most {MAX_ID_BYTES}): {quote(raw, 60)}"
    return raw, None


def message_id(headers: Mapping[Any, Any] | None) -> str:
    """The message's usable id, or "" (see :func:`checked_message_id`)."""
    return checked_message_id(headers)[0]


def traceparent_of(headers: Mapping[Any, Any] | None) -> str | None:
    """The W3C traceparent a message carries (CloudEvent attribute or plain header) if it is a
    valid one; None otherwise. Never raises."""
    headers = headers if isinstance(headers, Mapping) else {}
    for key in (f"{HEADER_PREFIX}traceparent", "traceparent"):
        value = headers.get(key)
        if isinstance(value, bytes) and len(value) < 100:
            value = value.decode("ascii", "replace")
        if _is_traceparent(value):
            return value
    return None


def _is_traceparent(value: Any) -> bool:
    return isinstance(value, str) and TRACEPARENT_RE.match(value) is not None


def _text(value: Any, name: str = "header") -> str:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEnvelope(f"header {quote(name, 60)} is not UTF-8: {quote(value, 60)}") from None
    return str(value)
