"""Officials' API end to end through a real grpcio server and a stock client (the generated stubs),
on both store backends (SQLite, MongoDB through mongomock), with events read back from a private
RabbitMQ vhost by an independent pika consumer."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import openpyxl
import pika
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from motcua_dev.testing import FakeSealer, pdf_pages, rpc_error
from motcua_dev.testing import SettableClock as Clock

from motcua.events.v1 import events_pb2
from motcua.grpcsupport import MAX_DETAILS, build_server
from motcua.messaging.outbox import Outbox
from motcua.messaging.publisher import Publisher
from motcua.messaging.topology import EVENTS_EXCHANGE
from motcua.objects import ObjectRef, ObjectStore
from motcua.protobufs import timestamp
from motcua.routing.v1 import routing_pb2, routing_pb2_grpc
from motcua.store import Store
from motcua.unit_of_work import UnitsOfWork
from motcua.worktime import VN_TZ, vietnam_calendar
from routing.adapters.drafts import DraftDocuments, StopNotices, SupplementForms
from routing.adapters.instances import INSTANCES, InstanceRecord
from routing.application.officials import Officials
from routing.application.register import Register
from routing.application.repository import Instances
from routing.application.statistics import StatisticsQuery
from routing.domain.kpi766 import Kpi
from routing.domain.process import ProcessDefinition
from routing.entrypoints.api import SERVICE_NAME, RoutingServicer

SEALER = FakeSealer()  # forms sealed for real in tests/integration/test_forms_sealed.py

pytestmark = pytest.mark.integration

CALENDAR = vietnam_calendar()
UNIT_IDS = {"xa-dong-tien": "000.01.06.H56", "xa-dong-thinh": "000.02.06.H56", "huyen-dong-son": "000.00.06.H56",
            "so-ldtbxh": "000.00.16.H56"}
LEVELS = {"xa-dong-tien": "commune", "xa-dong-thinh": "commune", "huyen-dong-son": "district",
          "so-ldtbxh": "province"}


def _step(role: str, unit: str, share: float, forward: bool = False, name: str = "") -> dict[str, Any]:
    return {"role": role, "unit": unit, "unit_id": UNIT_IDS[unit], "level": LEVELS[unit], "share": share,
            "name": name, "forward": forward}


# Like Thanh Hóa's 1.001776 (commune → district → commune), 17 working days.
PROCESS = {
    "steps": [
        _step("receive", "xa-dong-tien", 0.05),
        _step("review", "xa-dong-tien", 0.35, forward=True, name="Hội đồng xét duyệt cấp xã"),
        _step("review", "huyen-dong-son", 0.30, name="Phòng LĐ-TB&XH thẩm định"),
        _step("approve", "huyen-dong-son", 0.10),
        _step("sign", "huyen-dong-son", 0.10, name="Chủ tịch UBND huyện ký"),
        _step("seal", "huyen-dong-son", 0.05),
        _step("return", "xa-dong-tien", 0.05),
    ],
    "time_type": "working_days", "duration_hours": 136,
    "transfer_targets": [{"unit": "so-ldtbxh", "unit_id": UNIT_IDS["so-ldtbxh"], "level": "province"},
                         {"unit": "xa-dong-thinh", "unit_id": UNIT_IDS["xa-dong-thinh"], "level": "commune"}],
}
FRIDAY_16 = dt.datetime(2026, 10, 2, 16, 0, tzinfo=VN_TZ)

DESK = routing_pb2.Official(official_id="mc-dong-tien", unit="xa-dong-tien", roles=["receive", "return"])
COMMUNE = routing_pb2.Official(official_id="cc-dong-tien", unit="xa-dong-tien", roles=["review"])
OTHER_COMMUNE = routing_pb2.Official(official_id="cc-dong-thinh", unit="xa-dong-thinh", roles=["review"])
DISTRICT = routing_pb2.Official(official_id="cv-dong-son", unit="huyen-dong-son", roles=["review"])
DISTRICT_2 = routing_pb2.Official(official_id="cv2-dong-son", unit="huyen-dong-son", roles=["review"])
LEADER = routing_pb2.Official(official_id="tp-dong-son", unit="huyen-dong-son", roles=["approve"])
CHAIRMAN = routing_pb2.Official(official_id="ct-dong-son", unit="huyen-dong-son", roles=["sign", "approve"])
PROVINCE = routing_pb2.Official(official_id="cv-so", unit="so-ldtbxh", roles=["review"])


# -- fixtures ------------------------------------------------------------------------------------


@dataclass
class Event:
    routing_key: str
    type: str
    data: bytes

    def message(self, cls):
        return cls.FromString(self.data)


class Probe:
    """An independent AMQP client: its own queue bound to every public event. The outbox publishes
    with confirms, so a call's events are in the queue when it returns."""

    def __init__(self, uri: str):
        self._connection = pika.BlockingConnection(pika.URLParameters(uri))
        self._channel = self._connection.channel()
        self._channel.exchange_declare(EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
        self._queue = self._channel.queue_declare("", exclusive=True).method.queue
        self._channel.queue_bind(self._queue, EVENTS_EXCHANGE.name, routing_key="#")

    def events(self) -> list[Event]:
        out = []
        while True:
            method, properties, body = self._channel.basic_get(self._queue, auto_ack=True)
            if method is None:
                return out
            headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (properties.headers or {}).items()}
            out.append(Event(method.routing_key, headers["cloudEvents:type"], body))

    def close(self) -> None:
        self._connection.close()



@dataclass
class Env:
    officials: Officials
    stub: routing_pb2_grpc.RoutingServiceStub
    probe: Probe
    clock: Clock
    store: Store
    channel: grpc.Channel  # for calls with raw bytes
    objects: ObjectStore

    def open(self, n: int, received_at: dt.datetime = FRIDAY_16, procedure_code: str = "1.001776") -> str:
        code = f"000.01.06.H56-{received_at:%y%m%d}-{n:04d}"
        due = ProcessDefinition.from_dict(PROCESS).due_from(received_at, CALENDAR)
        self.officials.open({"dossier_id": f"d{n}", "code": code, "receiving_unit": "dong-son", "area": "dong-son",
                             "procedure_code": procedure_code, "received_at": received_at.isoformat(),
                             "due_at": due.isoformat(), "process": PROCESS, "procedure_name": "Trợ cấp xã hội",
                             "applicant": {"full_name": f"Người nộp {n}", "address": "Đông Tiến",
                                           "phone": "0912345678"}})
        return code

    def act(self, code: str, official: routing_pb2.Official, action: str, request_id: str = "",
            **fields: Any) -> routing_pb2.GetTimelineResponse:
        request = routing_pb2.ActRequest(request_id=request_id or str(uuid.uuid4()), code=code, official=official,
                                         action=action, **fields)
        return self.stub.Act(request).timeline

    def types(self) -> list[str]:
        return [e.type.removeprefix("vn.motcua.").removesuffix(".v1") for e in self.probe.events()]


@pytest.fixture
def env(store: Store, publisher: Publisher, vhost_uri: str, object_store) -> Iterator[Env]:
    clock = Clock(FRIDAY_16)
    instances = Instances(UnitsOfWork(store, Outbox(publisher)), CALENDAR, clock=clock, records=INSTANCES)
    officials = Officials(instances, DraftDocuments(object_store), StopNotices(object_store, SEALER),
                          SupplementForms(object_store, SEALER))
    statistics = StatisticsQuery(store.collection(InstanceRecord), clock)
    servicer = RoutingServicer(officials, statistics, Register(instances, statistics.period), SEALER)
    server, port, _ = build_server(
        [SERVICE_NAME], lambda s: routing_pb2_grpc.add_RoutingServiceServicer_to_server(servicer, s),
        "127.0.0.1", 0, reflection_on=False, workers=4)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    probe = Probe(vhost_uri)
    try:
        yield Env(officials, routing_pb2_grpc.RoutingServiceStub(channel), probe, clock, store, channel, object_store)
    finally:
        probe.close()
        channel.close()
        server.stop(grace=None).wait()



# -- opening -------------------------------------------------------------------------------------


def test_open_is_idempotent_and_publishes_the_first_assignment(env: Env):
    code = env.open(1)
    env.open(1)  # the same body again (a redelivered route_dossier)
    events = env.probe.events()
    assert [(e.routing_key, e.type) for e in events] == [("dong-son.dossier.assigned", "vn.motcua.dossier.assigned.v1")]
    assigned = events[0].message(events_pb2.DossierAssigned)
    assert (assigned.code, assigned.unit, assigned.role, assigned.step_index, assigned.status) == (
        code, "xa-dong-tien", "receive", 0, 4)
    timeline = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))
    assert [r.action for r in timeline.rows] == ["opened"]
    assert env.stub.GetTimeline(routing_pb2.GetTimelineRequest(dossier_id="d1")).code == code
    stored = env.store.collection(InstanceRecord).get("d1")
    assert not stored.get("outbox") and stored["current_unit"] == "xa-dong-tien" and stored["next_check_at"]


# -- a dossier's way through the units -------------------------------------------------------------


def test_officials_take_a_dossier_through_forward_and_to_signing(env: Env):
    code = env.open(1)
    env.probe.events()
    env.act(code, DESK, "claim")
    env.act(code, DESK, "complete")
    assert env.types() == ["dossier.assigned", "dossier.step_completed", "dossier.assigned"]

    t = env.act(code, COMMUNE, "forward", target_unit="xa-dong-thinh", reason="đúng địa bàn")
    events = env.probe.events()
    assert [e.type for e in events][0] == "vn.motcua.dossier.forwarded.v1"
    forwarded = events[0].message(events_pb2.DossierForwarded)
    assert (forwarded.from_unit, forwarded.to_unit, forwarded.to_unit_id, forwarded.actor) == (
        "xa-dong-tien", "xa-dong-thinh", UNIT_IDS["xa-dong-thinh"], "cc-dong-tien")
    assert t.rows[-1].action == "forward" and t.rows[-1].unit == "xa-dong-tien"

    # The step now belongs to the other commune: the first one may no longer act on it.
    error = rpc_error(env.act, code, COMMUNE, "complete")
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED and "xa-dong-thinh" in error.details()
    env.act(code, OTHER_COMMUNE, "complete")
    env.act(code, DISTRICT, "claim")
    env.act(code, DISTRICT, "complete")
    env.act(code, LEADER, "complete")
    env.probe.events()
    t = env.act(code, CHAIRMAN, "approve", note="đồng ý")
    events = env.probe.events()
    assert [e.type for e in events] == ["vn.motcua.dossier.signing_requested.v1"]
    assert events[0].message(events_pb2.SigningRequested).signing_request_id == "d1:sign:1"
    assert [r.action for r in t.rows] == ["opened", "claim", "complete", "forward", "complete", "claim", "complete",
                                          "complete", "approve"]
    assert t.rows[-1].actor == "ct-dong-son" and t.status == 4
    # The same action again: the draft is already at signing.
    error = rpc_error(env.act, code, CHAIRMAN, "approve")
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and "at signing" in error.details()


def test_transfer_to_another_level(env: Env):
    code = env.open(1)
    env.act(code, DESK, "complete")
    env.probe.events()
    env.act(code, COMMUNE, "transfer", target_unit="so-ldtbxh", reason="thuộc thẩm quyền Sở")
    events = env.probe.events()
    transferred = events[0].message(events_pb2.DossierTransferred)
    assert (transferred.to_unit, transferred.to_level, transferred.to_unit_id) == (
        "so-ldtbxh", "province", UNIT_IDS["so-ldtbxh"])
    tasks = env.stub.ListTasks(routing_pb2.ListTasksRequest(unit="so-ldtbxh")).tasks
    assert [t.code for t in tasks] == [code]
    env.act(code, PROVINCE, "claim")
    error = rpc_error(env.act, code, COMMUNE, "transfer", target_unit="khong-co")
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


def test_the_control_slip_lists_every_hand_over_and_renders_form_05(env: Env, tmp_path):
    code = env.open(1)
    env.act(code, DESK, "claim")
    env.act(code, DESK, "complete")
    env.act(code, COMMUNE, "forward", target_unit="xa-dong-thinh", reason="đúng địa bàn")
    env.act(code, OTHER_COMMUNE, "complete")

    slip = env.stub.GetControlSlip(routing_pb2.GetControlSlipRequest(code=code))
    assert [(r.step_index, r.from_unit, r.to_unit, r.from_official) for r in slip.rows] == [
        (0, "dong-son", "xa-dong-tien", ""), (1, "xa-dong-tien", "xa-dong-tien", "mc-dong-tien"),
        (1, "xa-dong-tien", "xa-dong-thinh", ""), (2, "xa-dong-thinh", "huyen-dong-son", "cc-dong-thinh")]
    assert [r.verdict for r in slip.rows] == ["early", "early", "early", ""]
    assert all(r.HasField("done_at") for r in slip.rows[:3]) and not slip.rows[3].HasField("done_at")
    assert slip.code == code
    # The same state gives the same form, byte for byte; its text is the circular's.
    assert env.stub.GetControlSlip(routing_pb2.GetControlSlipRequest(code=code)).pdf == slip.pdf
    (tmp_path / "05.pdf").write_bytes(slip.pdf)
    assert pdf_pages(slip.pdf) == ["A4"]  # a normal-length timeline fits the template's one page
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "05.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ", f"Mã hồ sơ: {code}", "Giao: xa-dong-tien",
                     "Nhận: xa-dong-thinh", "Trước hạn", "Đang giải quyết", "16 giờ 00 ngày 02/10/2026"):
        assert expected in text, (expected, text)
    assert rpc_error(env.stub.GetControlSlip, routing_pb2.GetControlSlipRequest(code="khong-co")).code() \
        is grpc.StatusCode.NOT_FOUND
    assert rpc_error(env.stub.GetControlSlip, routing_pb2.GetControlSlipRequest()).code() \
        is grpc.StatusCode.INVALID_ARGUMENT


def test_the_register_pages_a_units_dossiers_in_order_with_pdf_and_spreadsheet(env: Env, tmp_path):
    codes = [env.open(n, received_at=FRIDAY_16 + dt.timedelta(minutes=n)) for n in range(1, 6)]
    other_day = env.open(9, received_at=FRIDAY_16 + dt.timedelta(days=3))
    start = timestamp(FRIDAY_16)

    def page(token: str = "", **extra: Any) -> routing_pb2.GetRegisterResponse:
        return env.stub.GetRegister(routing_pb2.GetRegisterRequest(
            **{"unit": "dong-son", "period_start": start, "period_end": start, "page_size": 2, "page_token": token,
               **extra}))

    first = page(format=routing_pb2.REGISTER_FORMAT_PDF)
    second = page(first.next_page_token, format=routing_pb2.REGISTER_FORMAT_XLSX)
    third = page(second.next_page_token)
    rows = [*first.rows, *second.rows, *third.rows]
    assert [r.code for r in rows] == codes and other_day not in [r.code for r in rows]
    assert [r.number for r in rows] == [1, 2, 3, 4, 5] and third.next_page_token == ""
    assert (rows[0].applicant_name, rows[0].applicant_contact, rows[0].deciding_unit, rows[0].procedure_name) == (
        "Người nộp 1", "Đông Tiến, 0912345678", "huyen-dong-son", "Trợ cấp xã hội")
    assert not any(r.HasField("result_at") or r.HasField("returned_at") for r in rows)

    (tmp_path / "06.pdf").write_bytes(first.document)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "06.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("SỔ THEO DÕI HỒ SƠ", "Từ ngày 02/10/2026 đến ngày 02/10/2026", codes[0], "Người nộp 1"):
        assert expected in text, (expected, text)
    assert first.media_type == "application/pdf" and codes[2] not in text
    sheet = openpyxl.load_workbook(io.BytesIO(second.document)).active
    assert [row[1] for row in sheet.iter_rows(min_row=4, values_only=True)] == codes[2:4]
    assert next(sheet.iter_rows(min_row=4, values_only=True))[0] == "3"  # STT runs on across pages
    again = openpyxl.load_workbook(io.BytesIO(page(first.next_page_token, format=routing_pb2.REGISTER_FORMAT_XLSX)
                                              .document)).active
    # the same page asked again holds the same cells (not the same bytes: the zip entries are dated)
    assert list(again.iter_rows(values_only=True)) == list(sheet.iter_rows(values_only=True))

    # Filters: by status (the first dossier is still 4 like the rest) and by procedure.
    assert len(page(status=4, page_size=10).rows) == 5
    assert page(procedure_code="9.999999").rows == []
    for bad, field in ((dict(page_token="nope"), "page_token"), (dict(status=42), "status"),
                       (dict(format=7), "format"), (dict(page_size=-1), "page_size")):
        error = rpc_error(page, **bad) if "page_token" not in bad else rpc_error(page, bad["page_token"])
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and field in error.details(), (bad, error.details())
    no_start = rpc_error(env.stub.GetRegister, routing_pb2.GetRegisterRequest(unit="dong-son"))
    assert no_start.code() is grpc.StatusCode.INVALID_ARGUMENT and "period_start" in no_start.details()


def test_supplement_request_and_refusal(env: Env, tmp_path):
    code, other = env.open(1), env.open(2)
    env.act(code, DESK, "complete")
    env.act(other, DESK, "complete")
    env.probe.events()
    deadline = timestamp(FRIDAY_16 + dt.timedelta(days=10))
    t = env.act(code, COMMUNE, "request_supplement", reason="thiếu giấy xác nhận", deadline=deadline,
                components=["Giấy xác nhận hộ nghèo", "Bản sao CCCD (bản rõ nét)"])
    assert t.status == 5
    (event,) = env.probe.events()
    supplement = event.message(events_pb2.SupplementRequested)
    assert (event.routing_key, supplement.reason, supplement.requested_by, supplement.status) == (
        "dong-son.dossier.supplement_requested", "thiếu giấy xác nhận", "cc-dong-tien", 5)
    assert supplement.supplement_deadline == deadline
    assert list(supplement.components) == ["Giấy xác nhận hộ nghèo", "Bản sao CCCD (bản rõ nét)"]
    # Form 02 is stored before the event refers to it, and says what, why and by when.
    assert supplement.form.name == "phieu-yeu-cau-bo-sung-02.pdf" and supplement.form.media_type == "application/pdf"
    (tmp_path / "02.pdf").write_bytes(env.objects.get(ObjectRef.from_dict(
        {"key": supplement.form.key, "sha256": supplement.form.sha256, "size": supplement.form.size,
         "media_type": supplement.form.media_type})))
    assert pdf_pages((tmp_path / "02.pdf").read_bytes()) == ["A4"]
    text = subprocess.run(["pdftotext", str(tmp_path / "02.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ", code, "Trợ cấp xã hội (1.001776)",
                     "thiếu giấy xác nhận", "1. Giấy xác nhận hộ nghèo", "2. Bản sao CCCD (bản rõ nét)",
                     "trước 16 giờ 00 ngày 12/10/2026", "cc-dong-tien"):
        assert expected in text, (expected, text)
    # Under 5 the applicant holds the dossier: it is nobody's task and officials cannot act.
    assert [x.code for x in env.stub.ListTasks(routing_pb2.ListTasksRequest(unit="xa-dong-tien")).tasks] == [other]
    error = rpc_error(env.act, code, COMMUNE, "complete")
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and "5 (" in error.details()

    t = env.act(other, COMMUNE, "refuse", reason="không đủ điều kiện")
    assert t.status == 8
    types = [e.type for e in env.probe.events()]
    assert "vn.motcua.dossier.stopped.v1" in types


def test_payment_request_is_published(env: Env):
    code = env.open(1)
    env.act(code, DESK, "complete")
    env.probe.events()
    t = env.act(code, COMMUNE, "request_payment", amount=50_000, note="lệ phí")
    assert t.status == 6
    (event,) = env.probe.events()
    payment = event.message(events_pb2.PaymentRequested)
    assert (payment.amount, payment.requested_by, payment.status) == (50_000, "cc-dong-tien", 6)
    env.act(code, COMMUNE, "record_payment", note="biên lai 01")
    assert env.types() == ["dossier.payment_recorded"]


# -- task lists ----------------------------------------------------------------------------------


def test_list_tasks_by_deadline_paginated_and_filtered(env: Env):
    # Received half an hour apart on Monday morning: the later, the later the step deadline.
    # Opened out of order.
    monday = dt.datetime(2026, 10, 5, 7, 0, tzinfo=VN_TZ)
    codes = {}
    for n in (3, 1, 5, 2, 4):
        received = monday + dt.timedelta(minutes=30 * n)
        env.clock.now = received
        codes[n] = env.open(n, received_at=received, procedure_code="1.001776" if n != 4 else "2.000001")
    env.clock.now = monday + dt.timedelta(hours=3)
    expected = [codes[n] for n in (1, 2, 3, 4, 5)]

    seen, token, pages = [], "", 0
    while True:
        page = env.stub.ListTasks(routing_pb2.ListTasksRequest(unit="xa-dong-tien", page_size=2, page_token=token))
        seen += [t.code for t in page.tasks]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == expected and pages == 3
    deadlines = [t.step_deadline.ToDatetime() for t in env.stub.ListTasks(
        routing_pb2.ListTasksRequest(unit="xa-dong-tien")).tasks]
    assert deadlines == sorted(deadlines)

    only = env.stub.ListTasks(routing_pb2.ListTasksRequest(unit="xa-dong-tien", procedure_code="2.000001")).tasks
    assert [t.code for t in only] == [codes[4]]

    # An official's claimed tasks.
    env.act(codes[2], DESK, "claim")
    env.act(codes[5], DESK, "claim")
    mine = env.stub.ListTasks(routing_pb2.ListTasksRequest(official_id="mc-dong-tien")).tasks
    assert [(t.code, t.claimed_by, t.role) for t in mine] == [(codes[2], "mc-dong-tien", "receive"),
                                                              (codes[5], "mc-dong-tien", "receive")]
    assert mine[0].version == env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=codes[2])).version

    # The receive step holds 5 % of 17 days (6.8 working hours).
    first = env.officials.get(code=codes[1]).instance.current.deadline
    env.clock.now = first  # the first is overdue from its deadline instant on, the rest due soon
    overdue = env.stub.ListTasks(routing_pb2.ListTasksRequest(unit="xa-dong-tien",
                                                              filter=routing_pb2.TASK_FILTER_OVERDUE)).tasks
    soon = env.stub.ListTasks(routing_pb2.ListTasksRequest(unit="xa-dong-tien",
                                                           filter=routing_pb2.TASK_FILTER_DUE_SOON)).tasks
    assert [t.code for t in overdue] == [codes[1]]
    assert [t.code for t in soon] == expected[1:]

    error = rpc_error(env.stub.ListTasks, routing_pb2.ListTasksRequest(unit="xa-dong-tien", page_token="xyz"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in error.details()
    error = rpc_error(env.stub.ListTasks, routing_pb2.ListTasksRequest())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


# -- refusals ------------------------------------------------------------------------------------


def test_errors_name_the_cause(env: Env):
    code = env.open(1)
    env.probe.events()

    error = rpc_error(env.act, code, DESK, "return_result")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "channel" in error.details()
    error = rpc_error(env.act, code, DESK, "return_result", "", channel="desk", receiver="Nguyễn Văn An")
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "status 4" in error.details() and "allowed now" in error.details()

    error = rpc_error(env.act, code, DISTRICT, "claim")
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED and "huyen-dong-son" in error.details()
    wrong_role = routing_pb2.Official(official_id="x", unit="xa-dong-tien", roles=["review"])
    assert rpc_error(env.act, code, wrong_role, "claim").code() is grpc.StatusCode.PERMISSION_DENIED

    error = rpc_error(env.act, code, DESK, "claim", "", amount=5)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "amount" in error.details()
    error = rpc_error(env.act, code, DESK, "fly")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "action" in error.details()
    error = rpc_error(env.act, code, routing_pb2.Official(unit="xa-dong-tien"), "claim")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "official.id" in error.details()

    error = rpc_error(env.act, "000.01.06.H56-261002-9999", DESK, "claim")
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert rpc_error(env.stub.GetTimeline, routing_pb2.GetTimelineRequest(code="nope")).code() is \
        grpc.StatusCode.NOT_FOUND

    seen = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)).version
    claimed = env.act(code, DESK, "claim", expected_version=seen)
    assert claimed.version > seen
    error = rpc_error(env.act, code, DESK, "complete", "", expected_version=seen)
    assert error.code() is grpc.StatusCode.ABORTED and "someone acted first" in error.details()
    done = env.act(code, DESK, "complete", expected_version=claimed.version)

    # None of the refused calls changed anything or published anything.
    t = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))
    assert [r.action for r in t.rows] == ["opened", "claim", "complete"] and t.version == done.version
    assert env.types() == ["dossier.assigned", "dossier.step_completed", "dossier.assigned"]


def test_malformed_supplement_request_names_the_field(env: Env):
    code = env.open(1)
    env.act(code, DESK, "complete")
    error = rpc_error(env.act, code, COMMUNE, "request_supplement", "", reason="thiếu")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("deadline")
    error = rpc_error(env.act, code, COMMUNE, "request_supplement", "", reason="thiếu",
                      deadline=timestamp(FRIDAY_16 - dt.timedelta(days=1)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "deadline" in error.details()
    error = rpc_error(env.act, code, COMMUNE, "forward", "", target_unit="xa-khong-biet")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "unit" in error.details()


# -- idempotency and races -----------------------------------------------------------------------


def test_a_repeated_request_id_gets_the_first_answer_and_no_second_event(env: Env):
    code = env.open(1)
    env.probe.events()
    seen = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)).version
    first = env.act(code, DESK, "complete", request_id="req-1", expected_version=seen)
    again = env.act(code, DESK, "complete", request_id="req-1", expected_version=seen)
    assert first == again and first.version > seen
    assert env.types() == ["dossier.step_completed", "dossier.assigned"]
    error = rpc_error(env.act, code, COMMUNE, "claim", "req-1")
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS


# (what happens first, the action retried: official and fields, what changes the dossier before the retry)
DEADLINE = timestamp(FRIDAY_16 + dt.timedelta(days=10))
FIRST_ANSWER_CASES = [
    pytest.param([], (DESK, "claim", {"note": "nhận"}), [(DESK, "complete", {})], id="claim"),
    pytest.param([], (DESK, "complete", {"note": "đủ hồ sơ"}), [(COMMUNE, "claim", {})], id="complete"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "forward", {"target_unit": "xa-dong-thinh", "reason": "địa bàn"}),
                 [(OTHER_COMMUNE, "complete", {})], id="forward"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "request_payment", {"amount": 50_000, "note": "lệ phí"}),
                 [(COMMUNE, "record_payment", {"note": "biên lai 01"})], id="request-payment"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "transfer", {"target_unit": "so-ldtbxh", "reason": "Sở"}),
                 [(PROVINCE, "claim", {}), (PROVINCE, "complete", {})], id="transfer"),
]


@pytest.mark.parametrize(("before", "action", "meanwhile"), FIRST_ANSWER_CASES)
def test_a_retry_gets_the_first_answer_even_after_others_acted(env: Env, before, action, meanwhile):
    code = env.open(1)
    for official, name, fields in before:
        env.act(code, official, name, **fields)
    official, name, fields = action
    version = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)).version
    first = env.act(code, official, name, request_id="req-first", expected_version=version, **fields)
    assert first == env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))  # what was stored
    for other, other_name, other_fields in meanwhile:
        env.act(code, other, other_name, **other_fields)
    now = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))
    assert now.version > first.version
    env.probe.events()

    again = env.act(code, official, name, request_id="req-first", expected_version=version, **fields)

    assert again == first
    assert env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)) == now
    assert env.types() == []


COMPLETE = (DESK, "complete", {"note": "đủ hồ sơ"})
# (what happens first, the first request: official, action and fields, the other payloads sent with its id)
OTHER_PAYLOAD_CASES = [
    pytest.param([], COMPLETE, (DESK, "complete", {"note": "thiếu hồ sơ"}), id="other-note"),
    pytest.param([], COMPLETE, (DESK, "complete", {}), id="no-note"),
    pytest.param([], COMPLETE, (routing_pb2.Official(official_id="mc2-dong-tien", unit="xa-dong-tien",
                                                     roles=["receive", "return"]), "complete", {"note": "đủ hồ sơ"}),
                 id="other-official"),
    pytest.param([], COMPLETE, (routing_pb2.Official(official_id="mc-dong-tien", unit="xa-dong-tien",
                                                     roles=["receive"]), "complete", {"note": "đủ hồ sơ"}),
                 id="other-roles"),
    pytest.param([], COMPLETE, (routing_pb2.Official(official_id="mc-dong-tien", unit="xa-dong-thinh",
                                                     roles=["receive", "return"]), "complete", {"note": "đủ hồ sơ"}),
                 id="other-unit"),
    pytest.param([], COMPLETE, (DESK, "complete", {"note": "đủ hồ sơ", "expected_version": 99}),
                 id="other-expected-version"),
    pytest.param([], COMPLETE, (DESK, "complete", {"note": "đủ hồ sơ", "expected_version": 0}),
                 id="no-expected-version"),
    pytest.param([], COMPLETE, (DESK, "claim", {"note": "đủ hồ sơ"}), id="other-action"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "request_supplement", {"reason": "thiếu", "deadline": DEADLINE}),
                 (COMMUNE, "request_supplement", {"reason": "thiếu bản vẽ", "deadline": DEADLINE}),
                 id="other-reason"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "request_supplement", {"reason": "thiếu", "deadline": DEADLINE}),
                 (COMMUNE, "request_supplement", {"reason": "thiếu",
                                                  "deadline": timestamp(FRIDAY_16 + dt.timedelta(days=11))}),
                 id="other-deadline"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "forward", {"target_unit": "xa-dong-thinh", "reason": "địa bàn"}),
                 (COMMUNE, "forward", {"target_unit": "so-ldtbxh", "reason": "địa bàn"}), id="other-target-unit"),
    pytest.param([(DESK, "complete", {})], (COMMUNE, "request_payment", {"amount": 50_000, "note": "lệ phí"}),
                 (COMMUNE, "request_payment", {"amount": 60_000, "note": "lệ phí"}), id="other-amount"),
]


@pytest.mark.parametrize(("before", "action", "other"), OTHER_PAYLOAD_CASES)
def test_the_same_request_id_with_another_payload_is_already_exists(env: Env, before, action, other):
    code = env.open(1)
    for official, name, fields in before:
        env.act(code, official, name, **fields)
    official, name, fields = action
    fields = {"expected_version": env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)).version, **fields}
    env.act(code, official, name, request_id="req-first", **fields)
    now = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))
    env.probe.events()
    other_official, other_name, other_fields = other
    other_fields = {"expected_version": fields["expected_version"], **other_fields}

    error = rpc_error(env.act, code, other_official, other_name, "req-first", **other_fields)

    assert error.code() is grpc.StatusCode.ALREADY_EXISTS, error.details()
    assert "'req-first' was already used" in error.details()
    assert env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)) == now
    assert env.types() == []


def test_two_officials_acting_at_once_one_wins(env: Env):
    code = env.open(1)
    env.act(code, DESK, "complete")
    env.act(code, COMMUNE, "complete")  # now at the district's review step
    env.probe.events()
    version = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)).version
    for round_ in range(3):
        barrier = threading.Barrier(2)
        outcomes: dict[str, Any] = {}

        def claim(official: routing_pb2.Official, barrier: threading.Barrier, outcomes: dict[str, Any],
                  version: int) -> None:
            barrier.wait()
            try:
                outcomes[official.official_id] = env.act(code, official, "claim", expected_version=version)
            except grpc.RpcError as exc:
                outcomes[official.official_id] = exc.code()

        threads = [threading.Thread(target=claim, args=(o, barrier, outcomes, version)) for o in (DISTRICT, DISTRICT_2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [who for who, out in outcomes.items() if isinstance(out, routing_pb2.GetTimelineResponse)]
        losers = [out for out in outcomes.values() if not isinstance(out, routing_pb2.GetTimelineResponse)]
        assert len(winners) == 1, outcomes
        assert losers[0] in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
        stored = env.officials.get(code=code)
        assert stored.instance.current.actor == winners[0]
        assert stored.version == outcomes[winners[0]].version > version
        assert [r.action for r in stored.instance.timeline].count("claim") == round_ + 1
        events = env.probe.events()
        assert [e.type for e in events] == ["vn.motcua.dossier.assigned.v1"]
        assert events[0].message(events_pb2.DossierAssigned).assignee == winners[0]
        # Hand it back for the next round: return to the previous step and complete it again.
        env.act(code, routing_pb2.Official(official_id=winners[0], unit="huyen-dong-son", roles=["review"]),
                "return_previous", reason="xem lại")
        env.act(code, COMMUNE, "complete")
        env.probe.events()
        version = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)).version


# -- statistics ----------------------------------------------------------------------------------


def test_statistics_of_a_unit_over_grpc(env: Env):
    env.open(1)
    env.open(2)
    friday = timestamp(FRIDAY_16)
    response = env.stub.GetStatistics(routing_pb2.GetStatisticsRequest(unit="dong-son", period_start=friday))
    assert {k: v for k, v in response.counts.items() if v} == {"received_desk": 2, "in_process_on_time": 2}
    assert set(response.counts) == {k.value for k in Kpi}
    assert dict(response.percentages) == {"received_online": 0.0, "in_process_overdue": 0.0}
    by_district = env.stub.GetStatistics(routing_pb2.GetStatisticsRequest(
        area="dong-son", procedure_code="1.001776", period_start=friday, period_end=friday))
    assert by_district.counts == response.counts
    other = env.stub.GetStatistics(routing_pb2.GetStatisticsRequest(unit="ba-thuoc", period_start=friday))
    assert not any(other.counts.values()) and not other.percentages


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"period_start": timestamp(FRIDAY_16)}, "unit"),
    ({"unit": "dong-son", "area": "dong-son", "period_start": timestamp(FRIDAY_16)}, "unit"),
    ({"unit": "dong-son"}, "period_start"),
    ({"unit": "dong-son", "period_start": timestamp(FRIDAY_16),
      "period_end": timestamp(FRIDAY_16 - dt.timedelta(days=3))}, "period.end"),
])
def test_malformed_statistics_requests_name_the_field(env: Env, request_fields: dict, field: str):
    error = rpc_error(env.stub.GetStatistics, routing_pb2.GetStatisticsRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:")


# -- huge values are not echoed ------------------------------------------------------------------

HUGE = "x" * (1024 * 1024)  # a 1 MB field: echoed whole it would make a trailer the client refuses

# (rpc, the request for the dossier's code, status, the message's start, whether it quotes the value's prefix)
HUGE_VALUE_CASES = [
    pytest.param("GetTimeline", lambda code: routing_pb2.GetTimelineRequest(code=HUGE), grpc.StatusCode.NOT_FOUND,
                 "no workflow for dossier 'xxx", True, id="timeline-by-code"),
    pytest.param("GetTimeline", lambda code: routing_pb2.GetTimelineRequest(dossier_id=HUGE),
                 grpc.StatusCode.NOT_FOUND, "no workflow for dossier 'xxx", True, id="timeline-by-id"),
    pytest.param("Act", lambda code: routing_pb2.ActRequest(request_id="r-1", code=HUGE, official=DESK,
                                                            action="claim"),
                 grpc.StatusCode.NOT_FOUND, "no workflow for dossier 'xxx", True, id="act-unknown-code"),
    pytest.param("Act", lambda code: routing_pb2.ActRequest(request_id="r-1", code=code, official=DESK, action=HUGE),
                 grpc.StatusCode.INVALID_ARGUMENT, "action: 'xxx", False, id="act-unknown-action"),
    pytest.param("Act", lambda code: routing_pb2.ActRequest(request_id="r-1", code=code, official=COMMUNE,
                                                            action="forward", target_unit=HUGE),
                 grpc.StatusCode.INVALID_ARGUMENT, "unit: 'xxx", True, id="act-forward-unknown-unit"),
    pytest.param("Act", lambda code: routing_pb2.ActRequest(
        request_id="r-1", code=code, action="claim",
        official=routing_pb2.Official(official_id=HUGE, unit="huyen-dong-son", roles=["review"])),
        grpc.StatusCode.PERMISSION_DENIED, "xxx", False, id="act-huge-official"),
    pytest.param("Act", lambda code: routing_pb2.ActRequest(request_id="r-1", code=code, official=DESK,
                                                            action="claim", note=" ".join([HUGE[:1000]] * 1000)),
                 grpc.StatusCode.OK, "", False, id="act-huge-note-is-fine"),
    pytest.param("ListTasks", lambda code: routing_pb2.ListTasksRequest(unit="xa-dong-tien", page_token=HUGE),
                 grpc.StatusCode.INVALID_ARGUMENT, "page_token: ", False, id="list-huge-token"),
]


@pytest.mark.parametrize("rpc, build, status, start, quoted", HUGE_VALUE_CASES)
def test_a_huge_value_comes_back_as_a_short_prefix(env: Env, rpc, build, status, start, quoted):
    code = env.open(1)
    if status is grpc.StatusCode.OK:
        getattr(env.stub, rpc)(build(code))
        return
    error = rpc_error(getattr(env.stub, rpc), build(code))
    details = error.details()
    assert error.code() is status, (error.code(), details[:200])
    assert details.startswith(start), details
    assert not quoted or f"{HUGE[:64]!r}…" in details, details
    assert len(details) <= MAX_DETAILS and max(len(w) for w in details.split()) <= 68, details


# -- timestamps a caller sends ---------------------------------------------------------------------

YEAR_9999 = int(dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp())
# (a Timestamp no datetime of the platform can be made of, or one whose arithmetic would overflow)
BAD_TIMESTAMPS = [
    pytest.param(Timestamp(seconds=int(FRIDAY_16.timestamp()), nanos=-1), "nanos", id="negative-nanos"),
    pytest.param(Timestamp(seconds=int(FRIDAY_16.timestamp()), nanos=1_000_000_000), "nanos", id="nanos-too-big"),
    pytest.param(Timestamp(seconds=2**63 - 1), "must lie between", id="int64-max-seconds"),
    pytest.param(Timestamp(seconds=-2**63), "must lie between", id="int64-min-seconds"),
    pytest.param(Timestamp(seconds=YEAR_9999), "must lie between", id="9999-12-31"),
    pytest.param(Timestamp(seconds=YEAR_9999 + 86_399, nanos=999_999_999), "must lie between", id="last-instant"),
    pytest.param(Timestamp(seconds=-62135596800), "must lie between", id="0001-01-01"),
    pytest.param(Timestamp(seconds=int(dt.datetime(2200, 1, 1, tzinfo=dt.UTC).timestamp())), "must lie between",
                 id="2200-01-01"),
]


@pytest.mark.parametrize(("stamp", "reason"), BAD_TIMESTAMPS)
@pytest.mark.parametrize("field", ["period_start", "period_end"])
def test_a_statistics_period_beyond_what_a_date_can_hold_is_invalid_argument(env: Env, field: str, stamp, reason):
    request = routing_pb2.GetStatisticsRequest(unit="dong-son", period_start=timestamp(FRIDAY_16))
    getattr(request, field).CopyFrom(stamp)
    error = rpc_error(env.stub.GetStatistics, request)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: ") and reason in error.details(), error.details()


@pytest.mark.parametrize(("stamp", "reason"), BAD_TIMESTAMPS)
def test_an_act_deadline_beyond_what_a_date_can_hold_is_invalid_argument_and_changes_nothing(env: Env, stamp,
                                                                                             reason):
    code = env.open(1)
    env.act(code, DESK, "complete")
    before = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))
    env.probe.events()
    error = rpc_error(env.act, code, COMMUNE, "request_supplement", "", reason="thiếu", deadline=stamp)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("deadline: ") and reason in error.details(), error.details()
    assert env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)) == before
    assert env.types() == []


@pytest.mark.parametrize("start, end", [
    pytest.param(dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2199, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
                 id="the-whole-range"),
    pytest.param(dt.datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), None, id="starts-at-the-last-instant"),
    pytest.param(dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
                 id="the-first-day"),
])
def test_periods_at_the_edges_of_the_range_are_counted(env: Env, start, end):
    env.open(1)
    request = routing_pb2.GetStatisticsRequest(unit="dong-son", period_start=timestamp(start),
                                               period_end=timestamp(end) if end else None)
    counts = env.stub.GetStatistics(request).counts
    assert counts["received_desk"] == (1 if start.year == 1900 and end and end.year == 2199 else 0)


def test_a_deadline_at_the_end_of_the_range_is_accepted(env: Env):
    code = env.open(1)
    env.act(code, DESK, "complete")
    latest = dt.datetime(2199, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    t = env.act(code, COMMUNE, "request_supplement", reason="thiếu", deadline=timestamp(latest))
    assert t.status == 5



# -- bytes that are not a request ----------------------------------------------------------------


@pytest.mark.parametrize("method", [m.name for m in routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].methods])
@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"\x0a\x02\xff\xfe", b"\x12\x40abc"],
                         ids=["corrupt", "bad-utf8", "truncated"])
def test_undecodable_bytes_to_any_method_are_invalid_argument(env: Env, method, data):
    code = env.open(1)
    before = env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code))
    env.probe.events()
    call = env.channel.unary_unary(f"/{SERVICE_NAME}/{method}", request_serializer=None, response_deserializer=None)
    error = rpc_error(call, data)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"request: request is not a valid motcua.routing.v1.{method}Request (")
    assert len(error.details()) < 160
    assert env.stub.GetTimeline(routing_pb2.GetTimelineRequest(code=code)) == before and env.types() == []
