"""The CloudEvents 1.0 envelope of public events and the JSON work messages (pure, no broker)."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from motcua.events.v1 import events_pb2
from motcua.messaging import envelope, topology
from motcua.messaging.envelope import (
    HEADER_PREFIX,
    JSON,
    PROTOBUF,
    CloudEvent,
    InvalidEnvelope,
    OutgoingMessage,
    build_event,
    build_work,
    child_traceparent,
    is_event,
    message_id,
    parse_event,
    parse_work,
    trace_id,
    validate,
)
from motcua.types.v1 import types_pb2

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ICT = timezone(timedelta(hours=7))


def received(**overrides) -> events_pb2.DossierReceived:
    received_at = Timestamp()
    received_at.FromDatetime(datetime(2025, 3, 4, 1, 2, 3, tzinfo=UTC))
    fields = {
        "dossier_id": "d-1", "code": "000.00.30.H56-250304-0001", "procedure_code": "1.004616",
        "district": "bim-son", "unit_id": "000.00.30.H56",
        "applicant": types_pb2.Applicant(full_name="Nguyễn Văn A", identity_number="038090000001"),
        "documents": [types_pb2.DocumentRef(key="intake/d-1/ab", sha256="ab" * 32, size=3,
                                            media_type="application/pdf", name="đơn.pdf")],
        "received_at": received_at, "status": 1,
    }
    fields.update(overrides)
    return events_pb2.DossierReceived(**fields)


def event(**overrides) -> CloudEvent:
    kwargs = {"name": "dossier.received", "data": received(), "source": "/motcua/intake",
              "subject": "000.00.30.H56-250304-0001", "area": "bim-son", "traceparent": PARENT}
    kwargs.update(overrides)
    return build_event(**kwargs)


def wire(ev: CloudEvent) -> tuple[bytes, dict, str]:
    """What an AMQP consumer would get: body, headers (values as bytes, as some clients give
    them), content type."""
    out = ev.to_outgoing()
    return out.body, {k: v.encode() for k, v in out.headers.items()}, out.content_type


# -- events ---------------------------------------------------------------------------------------


def test_build_to_outgoing_parse_round_trip_keeps_every_attribute_and_the_data():
    at = datetime(2025, 3, 4, 8, 9, 10, 123456, tzinfo=ICT)
    ev = event(time=at)
    out = ev.to_outgoing()

    assert out.exchange == topology.EVENTS_EXCHANGE.name == "motcua.events"
    assert out.routing_key == "bim-son.dossier.received"
    assert out.content_type == PROTOBUF == "application/protobuf"
    assert out.id == ev.id
    headers = dict(out.headers)
    assert headers == {
        "cloudEvents:specversion": "1.0", "cloudEvents:id": ev.id, "cloudEvents:source": "/motcua/intake",
        "cloudEvents:type": "vn.motcua.dossier.received.v1", "cloudEvents:subject": "000.00.30.H56-250304-0001",
        "cloudEvents:time": at.isoformat(), "cloudEvents:area": "bim-son",
        "cloudEvents:dataschema": "type.googleapis.com/motcua.events.v1.DossierReceived",
        "cloudEvents:traceparent": ev.traceparent,
    }
    # The outbox keeps it as JSON-able data and gives back the same message.
    stored = json.loads(json.dumps(out.to_outbox()))
    assert OutgoingMessage.from_outbox(stored) == out

    parsed = parse_event(*wire(ev))
    assert parsed == ev
    assert parsed.time == at and parsed.time.utcoffset() == timedelta(hours=7)
    assert parsed.name == "dossier.received"
    decoded = parsed.decode(events_pb2.DossierReceived)
    assert decoded == received()
    assert decoded.applicant.full_name == "Nguyễn Văn A"
    assert decoded.documents[0].name == "đơn.pdf"


def test_utc_time_travels_with_z_and_parses_back():
    at = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    ev = event(time=at)
    assert ev.headers()[f"{HEADER_PREFIX}time"] == "2025-01-02T03:04:05.678000Z"
    assert parse_event(*wire(ev)).time == at


def test_build_event_defaults_time_to_now_in_utc_and_gives_fresh_ids():
    before = datetime.now(UTC)
    first, second = event(), event()
    assert before <= first.time <= datetime.now(UTC)
    assert first.time.tzinfo is not None
    assert first.id != second.id
    assert re.fullmatch(r"[0-9a-f-]{36}", first.id)


def test_versioned_type_and_routing_key():
    ev = event(name="dossier.returned", data=events_pb2.DossierReturned(code="X"), area="ba-thuoc",
               version=2)
    assert ev.type == "vn.motcua.dossier.returned.v2"
    assert ev.name == "dossier.returned"
    assert ev.routing_key == "ba-thuoc.dossier.returned"
    assert ev.to_outgoing().routing_key == "ba-thuoc.dossier.returned"
    assert ev.dataschema == "type.googleapis.com/motcua.events.v1.DossierReturned"
    assert topology.event_routing_key("bim-son", "document.signed") == "bim-son.document.signed"


def test_data_of_another_message_type_is_refused_when_it_cannot_decode():
    ev = dataclasses.replace(event(), data=b"\xff\xff\xff")
    with pytest.raises(InvalidEnvelope, match="DossierReceived"):
        ev.decode(events_pb2.DossierReceived)


@pytest.mark.parametrize("name", ["Dossier.x", "dossier", "dossier.Received", "dossier.received.extra"])
def test_build_event_refuses_a_bad_type(name):
    with pytest.raises(InvalidEnvelope, match="type"):
        event(name=name)


@pytest.mark.parametrize("bad_type", [
    "vn.motcua.Dossier.x",
    "vn.motcua.dossier.received",
    "vn.motcua.dossier.received.v0",
    "com.example.dossier.received.v1",
    "vn.motcua.dossier.received.v1\n",
])
def test_validate_refuses_a_bad_type(bad_type):
    with pytest.raises(InvalidEnvelope, match="type"):
        validate(dataclasses.replace(event(), type=bad_type))


@pytest.mark.parametrize("attribute", ["id", "source", "subject", "area", "type"])
def test_validate_refuses_a_missing_attribute(attribute):
    with pytest.raises(InvalidEnvelope, match=f"missing CloudEvents attributes: {attribute}"):
        validate(dataclasses.replace(event(), **{attribute: ""}))


def test_build_event_refuses_a_missing_subject():
    with pytest.raises(InvalidEnvelope, match="subject"):
        event(subject="")


def test_parse_event_refuses_a_missing_subject():
    body, headers, content_type = wire(event())
    del headers[f"{HEADER_PREFIX}subject"]
    with pytest.raises(InvalidEnvelope, match="subject"):
        parse_event(body, headers, content_type)


def test_naive_time_is_refused():
    with pytest.raises(InvalidEnvelope, match="time zone"):
        event(time=datetime(2025, 1, 1, 12, 0))
    body, headers, content_type = wire(event())
    headers[f"{HEADER_PREFIX}time"] = b"2025-01-01T12:00:00"
    with pytest.raises(InvalidEnvelope, match="time zone"):
        parse_event(body, headers, content_type)


@pytest.mark.parametrize("area", ["Bim-Son", "bim son", "bim_son", "-bim", "bim-", "bim--son", "",
                                      "bim-son\n", "bim-son.x"])
def test_bad_area_is_refused(area):
    with pytest.raises(InvalidEnvelope):
        validate(dataclasses.replace(event(), area=area))
    body, headers, content_type = wire(event())
    headers[f"{HEADER_PREFIX}area"] = area
    with pytest.raises(InvalidEnvelope):
        parse_event(body, headers, content_type)


def test_build_event_refuses_a_bad_area():
    with pytest.raises((InvalidEnvelope, ValueError)):
        event(area="Bim Son")


@pytest.mark.parametrize("traceparent", [
    "", "not-a-trace",
    "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   # unknown version
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   # upper case
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",    # short span id
    PARENT + "\n",
])
def test_bad_traceparent_is_refused(traceparent):
    with pytest.raises(InvalidEnvelope, match="traceparent"):
        validate(dataclasses.replace(event(), traceparent=traceparent))
    body, headers, content_type = wire(event())
    headers[f"{HEADER_PREFIX}traceparent"] = traceparent
    with pytest.raises(InvalidEnvelope, match="traceparent"):
        parse_event(body, headers, content_type)


@pytest.mark.parametrize("specversion", [b"0.3", b"1", b"2.0", None])
def test_wrong_specversion_is_refused(specversion):
    body, headers, content_type = wire(event())
    if specversion is None:
        del headers[f"{HEADER_PREFIX}specversion"]
    else:
        headers[f"{HEADER_PREFIX}specversion"] = specversion
    with pytest.raises(InvalidEnvelope, match="specversion"):
        parse_event(body, headers, content_type)


@pytest.mark.parametrize("time", [b"yesterday", b"2025-13-01T00:00:00Z", b"", None])
def test_unparsable_time_is_refused(time):
    body, headers, content_type = wire(event())
    if time is None:
        del headers[f"{HEADER_PREFIX}time"]
    else:
        headers[f"{HEADER_PREFIX}time"] = time
    with pytest.raises(InvalidEnvelope, match="time"):
        parse_event(body, headers, content_type)


def test_parse_event_refuses_messages_without_cloud_events_headers():
    body, headers, content_type = wire(event())
    with pytest.raises(InvalidEnvelope):
        parse_event(body, {k.removeprefix(HEADER_PREFIX): v for k, v in headers.items()}, content_type)
    with pytest.raises(InvalidEnvelope):
        parse_event(body, {}, content_type)


def test_message_id_and_is_event():
    ev = event()
    out = ev.to_outgoing()
    assert is_event(out.headers)
    assert message_id(out.headers) == ev.id
    assert message_id({f"{HEADER_PREFIX}id": ev.id.encode()}) == ev.id
    assert not is_event({"message-id": "w"}) and not is_event(None)
    assert message_id({}) == "" and message_id(None) == ""


# -- trace context --------------------------------------------------------------------------------


def test_child_traceparent_keeps_the_trace_id_with_a_new_span():
    child = child_traceparent(PARENT)
    assert envelope.TRACEPARENT_RE.match(child)
    assert trace_id(child) == trace_id(PARENT) == "0af7651916cd43dd8448eb211c80319c"
    assert child.split("-")[2] != PARENT.split("-")[2]
    assert child_traceparent(PARENT) != child  # each child its own span
    # The event built from a parent carries the parent's trace.
    assert trace_id(event(traceparent=PARENT).traceparent) == trace_id(PARENT)


@pytest.mark.parametrize("parent", [None, "", "garbage"])
def test_child_traceparent_without_a_valid_parent_starts_a_new_trace(parent):
    first, second = child_traceparent(parent), child_traceparent(parent)
    assert envelope.TRACEPARENT_RE.match(first) and envelope.TRACEPARENT_RE.match(second)
    assert trace_id(first) != trace_id(second)
    assert trace_id(parent) is None


# -- work messages --------------------------------------------------------------------------------


def test_work_message_round_trip():
    work = build_work(service="routing", area="bim-son", type="routing.route_dossier",
                      body={"dossier_id": "d-1", "code": "C-1", "n": 3, "tên": "Thanh Hóa"}, traceparent=PARENT)
    assert work.queue == "routing.bim-son"
    assert trace_id(work.traceparent) == trace_id(PARENT)
    out = work.to_outgoing()
    assert out.exchange == topology.WORK_EXCHANGE.name == "motcua.work"
    assert out.routing_key == "routing.bim-son"
    assert out.content_type == JSON
    assert message_id(out.headers) == work.id
    assert not is_event(out.headers)

    headers = {k: v.encode() for k, v in out.headers.items()}  # as bytes, as a client may give them
    parsed = parse_work(out.body, headers, "routing.bim-son")
    assert parsed == work
    assert parsed.body == {"dossier_id": "d-1", "code": "C-1", "n": 3, "tên": "Thanh Hóa"}


def test_work_message_keeps_a_given_id():
    work = build_work(service="signing", area="ba-thuoc", type="signing.sign", body={}, id="fixed-id")
    assert work.id == "fixed-id"
    assert parse_work(work.to_outgoing().body, work.to_outgoing().headers, work.queue).id == "fixed-id"


def test_build_work_refuses_unknown_service_or_bad_area():
    with pytest.raises(ValueError, match="unknown service"):
        build_work(service="billing", area="bim-son", type="x", body={})
    with pytest.raises(ValueError, match="area"):
        build_work(service="routing", area="Bim Son", type="x", body={})


GOOD_HEADERS = {"motcua-work-type": "routing.route_dossier", "message-id": "m-1", "traceparent": PARENT}


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"{", b""])
def test_parse_work_refuses_a_body_that_is_not_json(body):
    with pytest.raises(InvalidEnvelope, match="not JSON"):
        parse_work(body, GOOD_HEADERS, "routing.bim-son")


@pytest.mark.parametrize("headers, body", [
    ({"message-id": "m-1"}, b"{}"),                                     # no type
    ({**GOOD_HEADERS, "motcua-work-type": ""}, b"{}"),                  # empty type
    ({"motcua-work-type": "routing.route_dossier"}, b"{}"),             # no id
    (GOOD_HEADERS, b"[1, 2]"),                                          # not an object
    (GOOD_HEADERS, b"null"),
])
def test_parse_work_refuses_missing_type_id_or_object(headers, body):
    with pytest.raises(InvalidEnvelope, match="without type"):
        parse_work(body, headers, "routing.bim-son")


def test_parse_work_without_traceparent_starts_a_trace():
    parsed = parse_work(b"{}", {"motcua-work-type": "t", "message-id": "m"}, "routing.bim-son")
    assert envelope.TRACEPARENT_RE.match(parsed.traceparent)


# -- headers as any producer may send them --------------------------------------------------------


def test_header_values_that_are_not_utf8_make_an_invalid_envelope_not_a_crash():
    body, headers, content_type = wire(event())
    with pytest.raises(InvalidEnvelope, match=r"header 'cloudEvents:subject' is not UTF-8: b'\\xff"):
        parse_event(body, {**headers, f"{HEADER_PREFIX}subject": b"\xff\xfe"}, content_type)
    out = build_work(service="routing", area="bim-son", type="routing.route_dossier", body={}).to_outgoing()
    with pytest.raises(InvalidEnvelope, match="header 'motcua-work-type' is not UTF-8"):
        parse_work(out.body, {**out.headers, "motcua-work-type": b"\xc3\x28"}, "routing.bim-son")


def test_keys_that_are_not_text_and_a_bad_traceparent_do_not_break_parsing():
    body, headers, content_type = wire(event())
    assert parse_event(body, {**headers, b"\xff\xfe": b"x", 7: "y"}, content_type).subject
    out = build_work(service="routing", area="bim-son", type="routing.route_dossier", body={}).to_outgoing()
    parsed = parse_work(out.body, {**out.headers, "traceparent": b"\xff" * 55}, "routing.bim-son")
    assert envelope.TRACEPARENT_RE.match(parsed.traceparent)
    assert trace_id(12345) is None and child_traceparent(b"\xff") != child_traceparent(b"\xff")  # type: ignore[arg-type]


@pytest.mark.parametrize(("headers", "expected"), [
    ({"message-id": "m-1"}, ("m-1", None)),
    ({"message-id": b"m-1"}, ("m-1", None)),
    ({f"{HEADER_PREFIX}id": "e-1", "message-id": "m-1"}, ("e-1", None)),
    ({"message-id": "é" * 127}, ("é" * 127, None)),  # 254 bytes
    ({"message-id": "é" * 128}, ("", "message id is 256 bytes long (at most 255): 'ééé")),
    ({"message-id": b"\xff"}, ("", "message id is not UTF-8: b'\\xff'")),
    ({"message-id": "\udcff"}, ("", "message id is not valid Unicode text")),
    ({"message-id": 5}, ("", "message id is a int, not text: 5")),
    ({"message-id": ""}, ("", "message has no id")),
    ({}, ("", "message has no id")),
    (None, ("", "message has no id")),
    ("not a mapping", ("", "message has no id")),
])
def test_checked_message_id(headers, expected):
    mid, problem = envelope.checked_message_id(headers)
    assert mid == expected[0]
    assert (problem is None) if expected[1] is None else problem.startswith(expected[1])
    assert message_id(headers) == expected[0]


def test_the_area_is_the_routing_keys_first_word_and_an_event_of_before_the_rename_still_parses():
    ev = event(area="bim-son")
    assert ev.routing_key == "bim-son.dossier.received"
    body, headers, content_type = wire(ev)
    assert headers[f"{HEADER_PREFIX}area"] == b"bim-son" and f"{HEADER_PREFIX}district" not in headers
    # A message published before 2026-12 (still in a retry queue or the replay stream) named the
    # attribute "district"; it is read as the area.
    headers[f"{HEADER_PREFIX}district"] = headers.pop(f"{HEADER_PREFIX}area")
    assert parse_event(body, headers, content_type).area == "bim-son"


def test_work_travels_as_its_protobuf_contract_and_is_read_only_as_that_message():
    from motcua.work.v1 import work_pb2

    work = build_work(service="signing", area="bim-son", type="signing.sign_document", id="d1:sign:1",
                      data=work_pb2.SignDocument(signing_request_id="d1:sign:1", code="C", area="bim-son"))
    out = work.to_outgoing()
    assert (out.content_type, out.headers["motcua-work-schema"]) == ("application/protobuf",
                                                                      "motcua.work.v1.SignDocument")
    parsed = parse_work(out.body, out.headers, "signing.bim-son", out.content_type)
    assert parsed.decode(work_pb2.SignDocument).signing_request_id == "d1:sign:1"
    with pytest.raises(InvalidEnvelope, match="not motcua.work.v1.RouteDossier"):
        parsed.decode(work_pb2.RouteDossier)  # another contract's bytes are never read as this one
    with pytest.raises(InvalidEnvelope, match="not a valid"):
        parse_work(b"\xff\xff", out.headers, "signing.bim-son", out.content_type).decode(work_pb2.SignDocument)
    with pytest.raises(InvalidEnvelope, match="motcua-work-schema"):
        parse_work(out.body, {k: v for k, v in out.headers.items() if k != "motcua-work-schema"},
                   "signing.bim-son", out.content_type)
    with pytest.raises(ValueError):
        build_work(service="signing", area="bim-son", type="x", data=work_pb2.RenderForm(), body={})
