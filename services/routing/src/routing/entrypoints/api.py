"""Routing's gRPC api process (grpcio): officials' tasks, timelines and actions, and the
Decision 766 statistics. decode → use case → encode; errors become status codes in
motcua.grpcsupport.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import grpc
from fpdf import FPDF

from motcua import fonts, logs
from motcua.errors import InvalidArgument
from motcua.grpcsupport import Api, request_fingerprint, serve
from motcua.protobufs import datetime_of, timestamp
from motcua.routing.v1 import routing_pb2, routing_pb2_grpc
from motcua.runtime import Infrastructure
from motcua.sealing import Sealer, SealingClient
from motcua.worktime import vietnam_calendar
from routing.adapters.drafts import (
    DraftDocuments,
    StopNotices,
    SupplementForms,
    render_control_slip,
    sealed,
)
from routing.adapters.instances import INSTANCES, InstanceRecord
from routing.adapters.registers import register_pdf, register_xlsx
from routing.application.officials import ActOnDossier, Officials, TaskFilter, Timeline
from routing.application.register import Register, RegisterPage
from routing.application.repository import Instances, StoredInstance
from routing.application.statistics import StatisticsQuery
from routing.config import RoutingSettings
from routing.domain.actions import Official
from routing.domain.control_slip import SlipRow, control_slip
from routing.domain.register import RegisterRow

log = logging.getLogger(__name__)
SERVICE_NAME = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name

FILTERS = {routing_pb2.TASK_FILTER_UNSPECIFIED: TaskFilter.OPEN, routing_pb2.TASK_FILTER_OPEN: TaskFilter.OPEN,
           routing_pb2.TASK_FILTER_DUE_SOON: TaskFilter.DUE_SOON, routing_pb2.TASK_FILTER_OVERDUE: TaskFilter.OVERDUE}
CHANNEL_ALIASES = {"electronic": "online"}  # the proto's word for the domain's "online"
REGISTER_FORMATS: dict[int, tuple[Callable[[RegisterPage], bytes] | None, str]] = {
    routing_pb2.REGISTER_FORMAT_UNSPECIFIED: (None, ""),
    routing_pb2.REGISTER_FORMAT_PDF: (register_pdf, "application/pdf"),
    routing_pb2.REGISTER_FORMAT_XLSX: (register_xlsx,
                                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    """Translates calls: an official's action becomes a command handed to the bus; reads ask the
    use cases directly."""

    def __init__(self, officials: Officials, statistics: StatisticsQuery, register: Register,
                 sealer: Sealer, render_slip: Callable[..., bytes] = render_control_slip):
        self._officials = officials
        self._bus = officials.bus()
        self._statistics = statistics
        self._render_slip = render_slip
        self._sealer = sealer
        self._register = register

    def ListTasks(self, request: routing_pb2.ListTasksRequest, context: grpc.ServicerContext):
        if request.filter not in FILTERS:
            raise InvalidArgument("filter", f"unknown task filter {request.filter}")
        page = self._officials.list_tasks(
            unit=request.unit, official_id=request.official_id, filter=FILTERS[request.filter],
            procedure_code=request.procedure_code, page_size=request.page_size, page_token=request.page_token)
        return routing_pb2.ListTasksResponse(tasks=[task_message(t) for t in page.tasks],
                                             next_page_token=page.next_page_token)

    def GetTimeline(self, request: routing_pb2.GetTimelineRequest, context: grpc.ServicerContext):
        stored = self._officials.timeline(dossier_id=request.dossier_id, code=request.code)
        return timeline_message(Timeline.of(stored.instance, stored.version))

    def GetControlSlip(self, request: routing_pb2.GetControlSlipRequest, context: grpc.ServicerContext):
        instance = self._officials.timeline(dossier_id=request.dossier_id, code=request.code).instance
        slip = control_slip(instance)
        # Dated at the dossier's latest change: the same state renders the same bytes (the seal adds its time).
        # Sealed by the receiving unit (as the returned dossier's own, by the worker): UNAVAILABLE while
        # the signing api is out of reach.
        pdf = sealed(self._sealer, self._render_slip(slip, dated=instance.timeline[-1].at), instance, "Mẫu 05")
        return routing_pb2.GetControlSlipResponse(code=slip.code, rows=[handover_message(r) for r in slip.rows],
                                                  pdf=pdf)

    def GetRegister(self, request: routing_pb2.GetRegisterRequest, context: grpc.ServicerContext):
        if not request.HasField("period_start"):
            raise InvalidArgument("period_start", "is required")
        if request.format not in REGISTER_FORMATS:
            raise InvalidArgument("format", f"unknown register format {request.format}")
        end = datetime_of(request.period_end, "period_end") if request.HasField("period_end") else None
        page = self._register.page(unit=request.unit, start=datetime_of(request.period_start, "period_start"), end=end,
                                   procedure_code=request.procedure_code, status=request.status,
                                   page_size=request.page_size, page_token=request.page_token)
        render, media_type = REGISTER_FORMATS[request.format]
        document = render(page) if render else b""
        if media_type == "application/pdf":
            # The PDF sealed by the register's unit; a spreadsheet cannot carry a PAdES seal: unsealed.
            document = self._sealer(document, page.unit, f"Mẫu 06 {page.unit} {page.period.start}")
        return routing_pb2.GetRegisterResponse(
            rows=[register_row_message(n, r) for n, r in enumerate(page.rows, page.first_number)],
            next_page_token=page.next_page_token, document=document, media_type=media_type)

    def Act(self, request: routing_pb2.ActRequest, context: grpc.ServicerContext):
        timeline = self._bus.handle(ActOnDossier(
            request.request_id, request.code, official_of(request), request.action,
            expected_version=request.expected_version, fields=action_fields(request),
            traceparent=dict(context.invocation_metadata()).get("traceparent"),
            fingerprint=request_fingerprint(request)))
        return routing_pb2.ActResponse(timeline=timeline_message(timeline))

    def GetStatistics(self, request: routing_pb2.GetStatisticsRequest, context: grpc.ServicerContext):
        if not request.HasField("period_start"):
            raise InvalidArgument("period_start", "is required")
        end = datetime_of(request.period_end, "period_end") if request.HasField("period_end") else None
        stats = self._statistics.indicators(
            unit=request.unit, area=request.area or request.district, procedure_code=request.procedure_code,
            period=self._statistics.period(datetime_of(request.period_start, "period_start"), end))
        return routing_pb2.GetStatisticsResponse(counts={k.value: v for k, v in stats.counts.items()},
                                                 percentages=stats.percentages)


def official_of(request: routing_pb2.ActRequest) -> Official:
    if not request.HasField("official"):
        raise InvalidArgument("official", "is required")
    o = request.official
    return Official(o.official_id, o.unit, frozenset(o.roles))


def action_fields(request: routing_pb2.ActRequest) -> dict[str, Any]:
    """The command's fields from the request's (proto3: an unset field is its zero value, and a set
    one the action does not take is refused by name when the command is parsed)."""
    out: dict[str, Any] = {}
    if request.note:
        out["note"] = request.note
    if request.target_unit:
        out["unit"] = request.target_unit
    if request.reason:
        out["reason"] = request.reason
    if request.HasField("deadline"):
        out["deadline"] = datetime_of(request.deadline, "deadline")
    if request.amount:
        out["amount"] = request.amount
    if request.channel:
        out["channel"] = CHANNEL_ALIASES.get(request.channel, request.channel)
    if request.receiver:
        out["receiver"] = request.receiver
    if request.components:
        out["components"] = list(request.components)
    return out


def _optional(value):
    return timestamp(value) if value is not None else None


def task_message(stored: StoredInstance) -> routing_pb2.Task:
    w, step = stored.instance, stored.instance.current
    return routing_pb2.Task(
        dossier_id=w.dossier_id, code=w.code, procedure_code=w.procedure_code,
        step_index=step.index if step else 0, step=step.title if step else "", role=step.role.value if step else "",
        unit=step.unit if step else "", claimed_by=step.actor if step else "",
        step_deadline=_optional(step.deadline if step else None), due_at=timestamp(w.promised_due_at),
        status=int(w.status), version=stored.version)


def timeline_message(t: Timeline) -> routing_pb2.GetTimelineResponse:
    return routing_pb2.GetTimelineResponse(
        code=t.code, status=int(t.status), due_at=timestamp(t.due_at),
        previous_due_at=[timestamp(d) for d in t.previous_due_at],
        rows=[routing_pb2.TimelineRow(
            step_index=r.step_index if r.step_index is not None else 0, step=r.step_name, role=r.role,
            actor=r.actor, unit=r.unit, at=timestamp(r.at), action=r.action, note=r.note,
            step_deadline=_optional(r.step_deadline), status=int(r.status)) for r in t.rows],
        version=t.version)


def register_row_message(number: int, r: RegisterRow) -> routing_pb2.RegisterRow:
    return routing_pb2.RegisterRow(
        number=number, code=r.code, procedure_code=r.procedure_code, procedure_name=r.procedure_name,
        applicant_name=r.applicant_name, applicant_contact=r.applicant_contact, deciding_unit=r.deciding_unit,
        received_at=timestamp(r.received_at), due_at=timestamp(r.due_at), sent_at=_optional(r.sent_at),
        result_at=_optional(r.result_at), returned_at=_optional(r.returned_at), status=r.status, note=r.note)


def handover_message(r: SlipRow) -> routing_pb2.HandOver:
    return routing_pb2.HandOver(
        step_index=r.step_index, step_name=r.step_name, from_unit=r.from_unit, from_official=r.from_actor,
        to_unit=r.to_unit, handed_at=timestamp(r.handed_at), deadline=timestamp(r.deadline),
        done_at=_optional(r.done_at), verdict=r.verdict)


def build_servicer(settings: RoutingSettings, infra: Infrastructure, sealer: Sealer | None = None) -> RoutingServicer:
    """The servicer with its adapters; ``sealer`` (default: the signing api at MOTCUA_SIGNING_ADDRESS)
    seals forms 02, 05 (GetControlSlip; the returned dossier's own is the worker's), 06 and the stop
    notice."""
    instances = Instances(infra.units_of_work(), vietnam_calendar(), settings.clock(),
                          settings.sla_due_soon_hours, records=INSTANCES)
    statistics = StatisticsQuery(infra.store.collection(InstanceRecord), settings.clock())
    sealer = sealer or SealingClient.from_settings(settings)
    officials = Officials(instances, DraftDocuments(infra.objects), StopNotices(infra.objects, sealer),
                          SupplementForms(infra.objects, sealer))
    return RoutingServicer(officials, statistics, Register(instances, statistics.period), sealer)


def build_api(settings: RoutingSettings) -> Api:
    """What one server process of the api serves, on infrastructure of its own."""
    fonts.warm_up(FPDF)  # before READY: no Act's form 02/05 or register page pays the parse of the faces
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    servicer = build_servicer(settings, infra)
    return Api(lambda s: routing_pb2_grpc.add_RoutingServiceServicer_to_server(servicer, s), on_stop=infra.close)


def main() -> int:
    settings = RoutingSettings.load()
    logs.configure("routing-api", settings.log_level)
    return serve("routing api", settings, [SERVICE_NAME], build_api)


if __name__ == "__main__":
    sys.exit(main())
