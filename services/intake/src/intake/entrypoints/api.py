"""Intake's gRPC api process (grpcio): decode → command → use case → encode."""

from __future__ import annotations

import logging
import sys
from datetime import datetime

import grpc

from intake.adapters.catalog_file import load_catalog
from intake.adapters.records import RECORDS
from intake.application.dossiers import (
    AcceptDossier,
    Dossiers,
    RefuseDossier,
    SubmitDossier,
    SupplementDossier,
    WithdrawDossier,
)
from intake.application.events import applicant_message, document_refs
from intake.config import IntakeSettings
from intake.domain.catalog import Catalog
from intake.domain.dossier import Dossier
from intake.domain.lifecycle import Channel
from intake.domain.submission import Applicant, IncomingDocument, Limits
from intake.entrypoints import catalog_servicer
from intake.entrypoints.uploads import upload_document
from motcua import logs
from motcua.access import require_area
from motcua.errors import InvalidArgument
from motcua.grpcsupport import Api, request_fingerprint, serve
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.protobufs import document_ref, timestamp
from motcua.runtime import Infrastructure
from motcua.types.v1 import types_pb2

log = logging.getLogger(__name__)
SERVICE_NAME = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    """Translates calls: a state-changing call becomes a command handed to the bus; reads ask the
    use cases directly."""

    def __init__(self, dossiers: Dossiers):
        self._dossiers = dossiers
        self._bus = dossiers.bus()

    def UploadDocument(self, request_iterator, context: grpc.ServicerContext):
        return upload_document(self._dossiers.uploads, request_iterator)

    def SubmitDossier(self, request: intake_pb2.SubmitDossierRequest, context: grpc.ServicerContext):
        applicant = None
        if request.HasField("applicant"):
            a = request.applicant
            applicant = Applicant(full_name=a.full_name, identity_number=a.identity_number, phone=a.phone,
                                  email=a.email, address=a.address, notify_channels=list(a.notify_channels))
        command = SubmitDossier(
            request_id=request.request_id, fingerprint=request_fingerprint(request),
            procedure_code=request.procedure_code, receiving_unit=request.receiving_unit or request.district,
            applicant=applicant,
            documents=incoming_documents(request.documents), uploaded=uploaded_documents(request.uploaded),
            traceparent=_traceparent(context), channel=channel_of(request.channel),
        )
        dossier = self._bus.handle(command)
        return intake_pb2.SubmitDossierResponse(dossier_id=dossier.id, code=dossier.code,
                                                status=int(dossier.status),
                                                received_at=optional_timestamp(dossier.received_at))

    def AcceptDossier(self, request: intake_pb2.AcceptDossierRequest, context: grpc.ServicerContext):
        dossier = self._bus.handle(AcceptDossier(request.request_id, request.code, request.official,
                                                 _traceparent(context), request_fingerprint(request)))
        return intake_pb2.AcceptDossierResponse(dossier=dossier_message(dossier))

    def RefuseDossier(self, request: intake_pb2.RefuseDossierRequest, context: grpc.ServicerContext):
        dossier = self._bus.handle(RefuseDossier(request.request_id, request.code, request.official,
                                                 list(request.reasons), _traceparent(context),
                                                 request_fingerprint(request)))
        return intake_pb2.RefuseDossierResponse(dossier=dossier_message(dossier))

    def WithdrawDossier(self, request: intake_pb2.WithdrawDossierRequest, context: grpc.ServicerContext):
        dossier = self._bus.handle(WithdrawDossier(request.request_id, request.code, request.reason,
                                                   request.identity_number, _traceparent(context),
                                                   request_fingerprint(request)))
        return intake_pb2.WithdrawDossierResponse(dossier=dossier_message(dossier))

    def SupplementDossier(self, request: intake_pb2.SupplementDossierRequest, context: grpc.ServicerContext):
        dossier = self._bus.handle(SupplementDossier(
            request_id=request.request_id, fingerprint=request_fingerprint(request), code=request.code,
            documents=incoming_documents(request.documents), uploaded=uploaded_documents(request.uploaded),
            traceparent=_traceparent(context)))
        return intake_pb2.SupplementDossierResponse(dossier=dossier_message(dossier))

    def TrackDossier(self, request: intake_pb2.TrackDossierRequest, context: grpc.ServicerContext):
        dossier, procedure_name = self._dossiers.track(request.code)
        return intake_pb2.TrackDossierResponse(  # public: nothing about the applicant
            code=dossier.code, procedure_code=dossier.procedure_code, procedure_name=procedure_name,
            status=int(dossier.status), received_at=optional_timestamp(dossier.received_at),
            due_at=optional_timestamp(dossier.due_at), steps=progress_steps(dossier))

    def GetDossier(self, request: intake_pb2.GetDossierRequest, context: grpc.ServicerContext):
        dossier = self._dossiers.get(dossier_id=request.dossier_id, code=request.code)
        require_area(dossier.area)  # personal data: only for agencies of the dossier's area
        return intake_pb2.GetDossierResponse(dossier=dossier_message(dossier))


CHANNELS = {intake_pb2.CHANNEL_UNSPECIFIED: Channel.DESK, intake_pb2.CHANNEL_DESK: Channel.DESK,
            intake_pb2.CHANNEL_ONLINE: Channel.ONLINE, intake_pb2.CHANNEL_POST: Channel.POST}


def incoming_documents(documents) -> list[IncomingDocument]:
    return [IncomingDocument(name=d.name, media_type=d.media_type, content=d.content, component=d.component)
            for d in documents]


def uploaded_documents(uploaded) -> list[tuple[str, str, str]]:
    return [(u.upload_id, u.name, u.component) for u in uploaded]


def channel_of(value: int) -> Channel:
    if value not in CHANNELS:
        raise InvalidArgument("channel", f"unknown channel {value}")
    return CHANNELS[value]


def optional_timestamp(value):
    return timestamp(value) if value is not None else None


def progress_steps(dossier: Dossier) -> list[intake_pb2.ProgressStep]:
    return [intake_pb2.ProgressStep(action=row["action"], status=int(row["status"]),
                                    at=timestamp(datetime.fromisoformat(row["at"])))
            for row in dossier.history]


def dossier_message(dossier: Dossier) -> intake_pb2.Dossier:
    channel = {v: k for k, v in CHANNELS.items() if k != intake_pb2.CHANNEL_UNSPECIFIED}[Channel(dossier.channel)]
    return intake_pb2.Dossier(
        dossier_id=dossier.id, code=dossier.code, procedure_code=dossier.procedure_code,
        district=dossier.receiving_unit, receiving_unit=dossier.receiving_unit, area=dossier.area,
        unit_id=dossier.unit_id, status=int(dossier.status),
        applicant=applicant_message(dossier.applicant) if dossier.applicant else types_pb2.Applicant(),
        documents=document_refs(dossier), received_at=optional_timestamp(dossier.received_at),
        version=dossier.version, channel=channel, procedure_version=dossier.procedure_version or 0,
        due_at=optional_timestamp(dossier.due_at),
        previous_due_at=[timestamp(d) for d in dossier.previous_due_at],
        receipt=document_ref(dossier.receipt) if dossier.receipt else None,
        refusal_reasons=dossier.refusal_reasons, submitted_at=optional_timestamp(dossier.submitted_at),
        history=progress_steps(dossier))


def _traceparent(context: grpc.ServicerContext) -> str | None:
    return dict(context.invocation_metadata()).get("traceparent")


def build_dossiers(settings: IntakeSettings, infra: Infrastructure, catalog: Catalog | None = None) -> Dossiers:
    return Dossiers(infra.units_of_work(), infra.objects, catalog or load_catalog(settings.catalog_file),
                    limits_of(settings), RECORDS, clock=settings.clock(), served_areas=settings.served_areas())


def limits_of(settings: IntakeSettings) -> Limits:
    return Limits(max_document_bytes=settings.max_document_bytes, max_documents=settings.max_documents,
                  max_dossier_bytes=settings.max_dossier_bytes)


def build_api(settings: IntakeSettings) -> Api:
    """What one server process of the api serves, on infrastructure of its own."""
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    catalog = load_catalog(settings.catalog_file)  # once, shared by both services
    servicer = IntakeServicer(build_dossiers(settings, infra, catalog))

    def add_servicers(server: grpc.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)
        catalog_servicer.add_catalog_service(server, catalog)

    return Api(add_servicers, on_stop=infra.close)


def main() -> int:
    settings = IntakeSettings.load()
    logs.configure("intake-api", settings.log_level)
    return serve("intake api", settings, [SERVICE_NAME, catalog_servicer.SERVICE_NAME], build_api)


if __name__ == "__main__":
    sys.exit(main())
