"""Hypothesis strategies for the fuzz suite (``tests/fuzz``), generated from the protobuf
descriptors: any request message of any RPC, with strings empty, huge and non-ASCII, integers at
their bounds, enums with unknown values, nested and repeated messages and Timestamps with wild
seconds and nanos; and AMQP messages with random headers, properties and bodies.

``hints`` (field name → values) mix real values (a procedure code of the catalog, a unit's slug,
a seeded dossier's code) into the strings a field gets, so the fuzzer also gets past the first
NOT_FOUND into the use cases. Test code only: hypothesis is a development dependency.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

F = FieldDescriptor
INT_RANGES: dict[int, tuple[int, int]] = {
    F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1), F.TYPE_SFIXED32: (-2**31, 2**31 - 1),
    F.TYPE_INT64: (-2**63, 2**63 - 1), F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
TIMESTAMP = "google.protobuf.Timestamp"
MAX_DEPTH = 4
# Strings protobuf can carry (valid UTF-8: no lone surrogates), with Vietnamese letters, control
# characters, NUL, right-to-left marks and astral code points among them.
VIETNAMESE = "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹĐƯ Ơ"
ANY_CHAR = st.characters(exclude_categories=("Cs",))
HUGE_PIECES = ("a", "ư", "Nguyễn Văn A ", "\x00", "\u202e", "𝔘", "../", "%s%n", "'; DROP TABLE x; --")

# Every status but these is a failure of the edge: INTERNAL or UNKNOWN (an unmapped exception),
# UNAVAILABLE or DEADLINE_EXCEEDED (a process died or hung), DATA_LOSS, CANCELLED.
CLEAR_STATUSES = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                            "PERMISSION_DENIED", "ABORTED", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED"})

# -- settings profiles: short (in `make test`) and long (`make fuzz`) ----------------------------

PROFILE_ENV = "MOTCUA_FUZZ_PROFILE"
EXAMPLES_ENV = "MOTCUA_FUZZ_EXAMPLES"  # overrides the profile's examples per RPC
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
         HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much]
settings.register_profile("motcua-fuzz-short", max_examples=30, derandomize=True, deadline=None, database=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("motcua-fuzz-long", max_examples=10_000, derandomize=False, deadline=None,
                          database=None, suppress_health_check=_SLOW, print_blob=True)


def fuzz_settings() -> settings:
    """The settings of the profile ``MOTCUA_FUZZ_PROFILE`` names (short unless ``long``), with the
    examples per RPC of ``MOTCUA_FUZZ_EXAMPLES`` when set. Applied per test as a decorator, never
    loaded globally (the other property tests keep their own settings)."""
    profile = "long" if os.environ.get(PROFILE_ENV, "short") == "long" else "short"
    chosen = settings.get_profile(f"motcua-fuzz-{profile}")
    examples = os.environ.get(EXAMPLES_ENV)
    return settings(chosen, max_examples=int(examples)) if examples else chosen


# -- values ---------------------------------------------------------------------------------------

def bounded_integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({v for v in (low, low + 1, -1, 0, 1, 2, high - 1, high) if low <= v <= high})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def texts(hints: Sequence[str] = ()) -> st.SearchStrategy[str]:
    choices = [
        st.just(""),
        st.text(ANY_CHAR, max_size=40),
        st.text(st.sampled_from(VIETNAMESE), min_size=1, max_size=40),
        st.builds(lambda piece, n: piece * n, st.sampled_from(HUGE_PIECES), st.integers(1_000, 200_000)),
    ]
    if hints:
        hinted = st.sampled_from(list(hints))
        choices += [hinted, hinted, st.builds(lambda h, s: h + s, hinted, st.text(ANY_CHAR, min_size=1, max_size=3))]
    return st.one_of(choices)


def blobs(hints: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    choices = [
        st.just(b""),
        st.binary(max_size=64),
        st.builds(lambda tail: b"%PDF-1.7\n" + tail, st.binary(max_size=256)),
        st.builds(lambda tail: b"\x89PNG\r\n\x1a\n" + tail, st.binary(max_size=64)),
        st.builds(lambda tail: b"\xff\xd8\xff" + tail, st.binary(max_size=64)),
        st.builds(lambda piece, n: piece * n, st.sampled_from([b"\x00", b"%PDF", b"\xff"]),
                  st.integers(1_000, 300_000)),
    ]
    if hints:
        choices += [st.sampled_from(list(hints))] * 2
    return st.one_of(choices)


def floats(width: int) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.0, -0.0, 1.0, 0.5, float("inf"), float("-inf"), float("nan")]),
                     st.floats(width=width))


def timestamps() -> st.SearchStrategy[Message]:
    """Timestamps with plausible instants and wild ones: seconds at int64's bounds, before year 1
    and after 9999, nanos negative or over a second."""
    from google.protobuf.timestamp_pb2 import Timestamp

    seconds = st.one_of(st.integers(-2_208_988_800, 7_258_118_400), bounded_integers(-2**63, 2**63 - 1),
                        st.sampled_from([-62_135_596_801, -62_135_596_800, 253_402_300_799, 253_402_300_800]))
    nanos = st.one_of(st.integers(0, 999_999_999), bounded_integers(-2**31, 2**31 - 1),
                      st.sampled_from([-1, 999_999_999, 1_000_000_000]))
    return st.builds(lambda s, n: Timestamp(seconds=s, nanos=n), seconds, nanos)


def _enum_values(field: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [value.number for value in field.enum_type.values]
    return st.one_of(st.sampled_from(known), st.sampled_from(known), bounded_integers(-2**31, 2**31 - 1))


def _scalar(field: FieldDescriptor, hints: Mapping[str, Sequence[Any]], depth: int) -> st.SearchStrategy[Any]:
    hinted = hints.get(field.name, ())
    kind = field.type
    if kind == F.TYPE_STRING:
        return texts([h for h in hinted if isinstance(h, str)])
    if kind == F.TYPE_BYTES:
        return blobs([h for h in hinted if isinstance(h, bytes)])
    if kind == F.TYPE_BOOL:
        return st.booleans()
    if kind == F.TYPE_ENUM:
        return _enum_values(field)
    if kind == F.TYPE_DOUBLE:
        return floats(64)
    if kind == F.TYPE_FLOAT:
        return floats(32)
    if kind in INT_RANGES:
        strategy = bounded_integers(*INT_RANGES[kind])
        ints = [h for h in hinted if isinstance(h, int)]
        return st.one_of(strategy, st.sampled_from(ints)) if ints else strategy
    if kind in (F.TYPE_MESSAGE, F.TYPE_GROUP):
        return messages(field.message_type, hints, depth + 1)
    raise TypeError(f"no strategy for field {field.full_name} of type {kind}")


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == F.LABEL_REPEATED


def _field_values(field: FieldDescriptor, hints: Mapping[str, Sequence[Any]], depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return st.dictionaries(_scalar(key, hints, depth), _scalar(value, hints, depth), max_size=4)
    single = _scalar(field, hints, depth)
    if not _is_repeated(field):
        return single
    return st.one_of(st.lists(single, max_size=4),
                     st.builds(lambda item, n: [item] * n, single, st.integers(5, 300)))  # many of one


def messages(descriptor: Descriptor, hints: Mapping[str, Sequence[Any]] | None = None,
             depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of ``descriptor``'s type, walking its fields (each set or left unset)."""
    if descriptor.full_name == TIMESTAMP:
        return timestamps()
    cls = message_factory.GetMessageClass(descriptor)
    if depth > MAX_DEPTH:
        return st.just(cls())
    hints = hints or {}
    optional = {f.name: _field_values(f, hints, depth) for f in descriptor.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: _build(cls, values))


def _build(cls: type[Message], values: Mapping[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if field.message_type.fields_by_name["value"].message_type is not None:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif _is_repeated(field):
            if field.message_type is not None:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def methods(*services: ServiceDescriptor) -> list[MethodDescriptor]:
    return [method for service in services for method in service.methods]


def method_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def raw_requests() -> st.SearchStrategy[bytes]:
    """Bytes that mostly do not decode as any message: truncated varints, wrong wire types, lengths
    beyond the end, invalid UTF-8 in what would be a string field, deep nesting, random bytes."""
    return st.one_of(
        st.binary(max_size=128),
        st.sampled_from([b"\xff", b"\x80" * 11, b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05ab", b"\x0a\x02\xff\xfe",
                         b"\x12\x03\xc3\x28\x41", b"\x0f", b"\x0b\x0c", b"\x08", b"\x0a" * 200,
                         b"\x22\x7f" + b"\x22\x7d" * 60]),
        st.builds(lambda tag, tail: bytes([tag]) + tail, st.integers(0, 255), st.binary(max_size=32)),
    )


# -- AMQP ---------------------------------------------------------------------------------------

def header_values(hints: Sequence[Any] = ()) -> st.SearchStrategy[Any]:
    """Anything pika can put in an AMQP table (it has no float type)."""
    # Not huge: a header frame over the broker's frame_max (128 KiB) closes the connection before
    # any motcua code sees the message.
    text = st.one_of(st.text(ANY_CHAR, max_size=40), st.text(ANY_CHAR, min_size=256, max_size=600),
                     *([st.sampled_from(list(hints))] * 2 if hints else []))
    scalars = st.one_of(st.none(), st.booleans(), bounded_integers(-2**63, 2**63 - 1), text,
                        st.binary(max_size=64), st.datetimes(min_value=datetime(1970, 1, 2)),
                        st.decimals(min_value=-10**6, max_value=10**6, places=2).map(Decimal),
                        st.binary(min_size=300, max_size=1000))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=4)


def amqp_messages(work_types: Sequence[str], event_types: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A message as a caller of pika would publish it: ``headers``, ``properties`` (keyword
    arguments of pika.BasicProperties, without headers) and ``body``. The message-id header is
    left to the caller (it makes it unique when it is usable)."""
    known_headers = {
        "motcua-work-type": header_values(work_types),
        "cloudEvents:type": header_values(event_types),
        "cloudEvents:id": header_values(),
        "cloudEvents:area": header_values(["bim-son", "thanh-hoa"]),
        "cloudEvents:subject": header_values(),
        "motcua-attempt": st.one_of(bounded_integers(-2**63, 2**63 - 1), header_values()),
        "traceparent": header_values(["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]),
        "compression": header_values(["application/x-gzip"]),
        "motcua-origin-queue": header_values(),
    }
    headers = st.fixed_dictionaries({}, optional=known_headers).flatmap(
        lambda chosen: st.dictionaries(st.text(ANY_CHAR, max_size=20), header_values(), max_size=4).map(
            lambda extra: {**extra, **chosen}))
    properties = st.fixed_dictionaries({}, optional={
        "content_type": st.one_of(st.sampled_from(["application/json", "application/protobuf",
                                                   "application/octet-stream", "text/plain",
                                                   "application/json; charset=utf-8", ""]),
                                  st.text(ANY_CHAR, max_size=30)),
        "content_encoding": st.one_of(st.sampled_from(["utf-8", "binary", "gzip"]), st.text(ANY_CHAR, max_size=20)),
        "delivery_mode": st.sampled_from([1, 2]),
        "priority": st.integers(0, 255),
        "correlation_id": st.text(ANY_CHAR, max_size=40),
        "reply_to": st.text(ANY_CHAR, max_size=40),
        "message_id": st.text(ANY_CHAR, max_size=40),
        "timestamp": st.integers(0, 2**63 - 1),
        "type": st.text(ANY_CHAR, max_size=40),
        "app_id": st.text(ANY_CHAR, max_size=40),
    })
    json_bodies = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(ANY_CHAR, max_size=30)),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(ANY_CHAR, max_size=12), inner,
                                                                               max_size=5)),
        max_leaves=12)
    bodies = st.one_of(
        st.binary(max_size=256),
        json_bodies.map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries({}, optional={k: st.text(ANY_CHAR, max_size=30) for k in
                                            ("dossier_id", "code", "area", "receiving_unit", "signing_request_id")}
                              ).map(lambda value: json.dumps(value).encode()),
        st.builds(lambda piece, n: piece * n, st.sampled_from([b"\xff", b"{", b"[", b"\x00"]), st.integers(1, 100_000)),
    )
    return st.fixed_dictionaries({"headers": headers, "properties": properties, "body": bodies})
