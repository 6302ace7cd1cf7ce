"""The access list as a matrix (DESIGN.md rule 6): every caller × every method of intake's api
(IntakeService and CatalogService) × every area of the catalog, through the real servicers in a
mutual-TLS grpcio server built by build_server (as intake's api builds it), called by stock grpcio
clients with real certificates of a test CA (motcua_dev.testing.MutualTlsPki), plus a certificate of
an unknown CA, an expired one and no certificate (the handshake fails: UNAVAILABLE) and a revoked
one (on the CA's revocation list, which the edge reads: UNAUTHENTICATED for every method).

Each cell is allowed or denied exactly as the table says; a denied call stores nothing (no dossier,
no change to the dossier it names, no object, no event). One test per caller runs its row of cells
(33 calls), so the matrix adds a few seconds to the suite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pika
import pytest
from motcua_dev.harness import sample_pdf
from motcua_dev.testing import MutualTlsPki, S3Endpoint, drop_bucket, new_bucket_store

from intake.adapters.records import DossierRecord
from intake.application.dossiers import SubmitDossier
from intake.config import IntakeSettings
from intake.domain.lifecycle import Channel
from intake.domain.submission import Applicant, IncomingDocument
from intake.entrypoints import catalog_servicer
from intake.entrypoints.api import SERVICE_NAME, IntakeServicer, build_dossiers
from motcua.access import AccessList
from motcua.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from motcua.grpcsupport import ServerTls, build_server, revoked_serials
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.messaging.outbox import Outbox
from motcua.messaging.publisher import Publisher
from motcua.messaging.topology import EVENTS_EXCHANGE
from motcua.runtime import Infrastructure
from motcua.store import open_store

pytestmark = pytest.mark.integration

INTAKE = SERVICE_NAME
CATALOG = catalog_servicer.SERVICE_NAME
AREAS = ("ba-thuoc", "bim-son", "thanh-hoa", "tho-xuan")  # the sample catalog's (checked below)
# Where a dossier of each area is received, and a procedure that unit receives with its components.
DESK = {"bim-son": ("bim-son", "1.004616", ("don-de-nghi", "ban-ve")),
        "ba-thuoc": ("ba-thuoc", "1.004616", ("don-de-nghi", "ban-ve")),
        "tho-xuan": ("tho-xuan", "1.004616", ("don-de-nghi", "ban-ve")),
        "thanh-hoa": ("van-phong-dang-ky-dat-dai", "1.004227", ("don-dang-ky-bien-dong", "giay-chung-nhan"))}
# Methods whose call concerns one area (the dossier's, or the receiving unit's), and those that do not.
AREA_METHODS = (f"{INTAKE}/SubmitDossier", f"{INTAKE}/AcceptDossier", f"{INTAKE}/RefuseDossier",
                f"{INTAKE}/SupplementDossier", f"{INTAKE}/WithdrawDossier", f"{INTAKE}/GetDossier",
                f"{INTAKE}/TrackDossier")
OTHER_METHODS = (f"{INTAKE}/UploadDocument", f"{CATALOG}/ListProcedures", f"{CATALOG}/GetProcedure",
                 f"{CATALOG}/ListUnits", f"{CATALOG}/GetUnit")
ACCESS = {
    "public": [f"{INTAKE}/TrackDossier", f"{CATALOG}/*"],
    "agencies": {
        "cong-dvc-quoc-gia": {"methods": ["*"], "areas": ["*"]},
        "ubnd-thi-xa-bim-son": {"methods": [f"{INTAKE}/*"], "areas": ["bim-son"]},
        "van-phong-ubnd-tinh": {"methods": [f"{INTAKE}/GetDossier", f"{INTAKE}/AcceptDossier",
                                            f"{INTAKE}/RefuseDossier"], "areas": ["thanh-hoa"]},
        "buu-dien-tinh": {"methods": [f"{INTAKE}/SubmitDossier", f"{INTAKE}/UploadDocument"],
                          "areas": ["ba-thuoc", "tho-xuan"]},
    },
}
# Callers: every agency of the list, one the CA certified but the list omits, and the bad certificates.
HANDSHAKE_FAILS = ("unknown-ca", "expired", "no-certificate")
CALLERS = (*ACCESS["agencies"], "so-tu-phap", *HANDSHAKE_FAILS, "revoked")
DENIALS = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE)
OK = grpc.StatusCode.OK


def expected(caller: str, method: str, area: str | None) -> grpc.StatusCode:
    """What the access list says of one cell, written from the table above (not from AccessList)."""
    if caller in HANDSHAKE_FAILS:
        return grpc.StatusCode.UNAVAILABLE
    if caller == "revoked":
        return grpc.StatusCode.UNAUTHENTICATED
    if method in ACCESS["public"] or (method.startswith(CATALOG) and f"{CATALOG}/*" in ACCESS["public"]):
        return OK
    grant = ACCESS["agencies"].get(caller)
    if grant is None:
        return grpc.StatusCode.PERMISSION_DENIED
    service = method.rpartition("/")[0]
    if not {"*", method, f"{service}/*"} & set(grant["methods"]):
        return grpc.StatusCode.PERMISSION_DENIED
    if area is not None and "*" not in grant["areas"] and area not in grant["areas"]:
        return grpc.StatusCode.PERMISSION_DENIED
    return OK


@dataclass
class Edge:
    port: int
    pki: MutualTlsPki
    infra: Infrastructure
    dossiers: object
    bucket: object
    events: pika.adapters.blocking_connection.BlockingChannel
    events_queue: str
    targets: dict[str, str]  # area → code of an online dossier (status 1) the by-code methods name

    def snapshot(self) -> tuple:
        """Dossiers and their versions, objects in the bucket, events published since the last call."""
        dossiers = tuple(sorted((d["code"], d["version"]) for d in
                                self.infra.store.collection(DossierRecord).find({})))
        objects = sum(1 for _ in self.bucket.client.list_objects(self.bucket.bucket, recursive=True))
        events = 0
        while self.events.basic_get(self.events_queue, auto_ack=True)[0] is not None:
            events += 1
        return dossiers, objects, events


def documents(components) -> list[intake_pb2.Document]:
    return [intake_pb2.Document(name=f"{c}.pdf", media_type="application/pdf", content=sample_pdf(c), component=c)
            for c in components]


@pytest.fixture(scope="module")
def edge(tmp_path_factory, s3_endpoint: S3Endpoint, vhost_uri: str) -> Iterator[Edge]:
    pki = MutualTlsPki.create(tuple(ACCESS["agencies"]) + ("so-tu-phap",))
    pki.issue_rogue("unknown-ca", cn="cong-dvc-quoc-gia")
    pki.issue("expired", cn="cong-dvc-quoc-gia", expired=True)
    pki.issue("revoked", cn="cong-dvc-quoc-gia")  # of a listed agency, but on the CA's revocation list
    bucket = new_bucket_store(s3_endpoint, prefix="intake-access")
    settings = IntakeSettings.load(amqp_uri=vhost_uri, mongo_uri=None,
                                   data_dir=tmp_path_factory.mktemp("intake-access"),
                                   **s3_endpoint.settings_overrides(bucket.bucket))
    publisher = Publisher(settings.amqp_uri)
    infra = Infrastructure(settings=settings, store=open_store(settings), objects=bucket, publisher=publisher,
                           outbox=Outbox(publisher))
    dossiers = build_dossiers(settings, infra)
    assert tuple(dossiers._catalog.areas()) == AREAS
    servicer = IntakeServicer(dossiers)

    def add(server: grpc.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)
        catalog_servicer.add_catalog_service(server, dossiers._catalog)

    server, port, _ = build_server([INTAKE, CATALOG], add, "127.0.0.1", 0, reflection_on=False, workers=4,
                                   tls=ServerTls(pki.server_cert, pki.server_key, pki.ca,
                                                 revoked_serials(pki.crl("revoked"), pki.ca)),
                                   access_list=AccessList.from_dict(ACCESS))
    server.start()
    connection = pika.BlockingConnection(pika.URLParameters(vhost_uri))
    channel = connection.channel()
    channel.exchange_declare(EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, EVENTS_EXCHANGE.name, routing_key="#")
    targets = {}
    for area, (unit, procedure, components) in DESK.items():  # online: waits at the desk (status 1)
        request_id = str(uuid.uuid4())
        targets[area] = dossiers.submit(SubmitDossier(
            request_id=request_id, fingerprint=request_id, procedure_code=procedure, receiving_unit=unit,
            applicant=Applicant(full_name="Nguyễn Văn A", identity_number="038095001234"),
            documents=[IncomingDocument(d.name, d.media_type, d.content, d.component) for d in documents(components)],
            channel=Channel.ONLINE)).code
    try:
        yield Edge(port, pki, infra, dossiers, bucket, channel, queue, targets)
    finally:
        connection.close()
        server.stop(grace=None).wait()
        infra.close()
        drop_bucket(bucket)


def call(edge: Edge, caller: str, method: str, area: str | None):
    """One cell: the method called by ``caller`` about ``area`` through a stock grpcio channel."""
    cert, key = (None, None) if caller == "no-certificate" else edge.pki.clients[caller]
    credentials = grpc.ssl_channel_credentials(root_certificates=edge.pki.ca, private_key=key, certificate_chain=cert)
    with grpc.secure_channel(f"127.0.0.1:{edge.port}", credentials,
                             options=[("grpc.ssl_target_name_override", "localhost")]) as channel:
        intake, catalog = intake_pb2_grpc.IntakeServiceStub(channel), catalog_pb2_grpc.CatalogServiceStub(channel)
        name = method.rpartition("/")[2]
        rid = str(uuid.uuid4())
        code = edge.targets.get(area or "", "")
        unit, procedure, components = DESK.get(area or "", DESK["bim-son"])
        requests = {
            "SubmitDossier": lambda: intake.SubmitDossier(intake_pb2.SubmitDossierRequest(
                request_id=rid, procedure_code=procedure, receiving_unit=unit, documents=documents(components),
                applicant={"full_name": "Trần Thị B", "identity_number": "038095005678"}), timeout=10),
            "AcceptDossier": lambda: intake.AcceptDossier(intake_pb2.AcceptDossierRequest(
                request_id=rid, code=code, official="Lê Văn C"), timeout=10),
            "RefuseDossier": lambda: intake.RefuseDossier(intake_pb2.RefuseDossierRequest(
                request_id=rid, code=code, official="Lê Văn C", reasons=["thiếu giấy tờ"]), timeout=10),
            "SupplementDossier": lambda: intake.SupplementDossier(intake_pb2.SupplementDossierRequest(
                request_id=rid, code=code, documents=documents(components[:1])), timeout=10),
            "WithdrawDossier": lambda: intake.WithdrawDossier(intake_pb2.WithdrawDossierRequest(
                request_id=rid, code=code, reason="rút", identity_number="038095001234"), timeout=10),
            "GetDossier": lambda: intake.GetDossier(intake_pb2.GetDossierRequest(code=code), timeout=10),
            "TrackDossier": lambda: intake.TrackDossier(intake_pb2.TrackDossierRequest(code=code), timeout=10),
            "UploadDocument": lambda: intake.UploadDocument(iter([
                intake_pb2.UploadDocumentRequest(header=intake_pb2.UploadHeader(request_id=rid,
                                                                                media_type="application/pdf")),
                intake_pb2.UploadDocumentRequest(chunk=sample_pdf("upload"))]), timeout=10),
            "ListProcedures": lambda: catalog.ListProcedures(catalog_pb2.ListProceduresRequest(), timeout=10),
            "GetProcedure": lambda: catalog.GetProcedure(catalog_pb2.GetProcedureRequest(code="1.004616"), timeout=10),
            "ListUnits": lambda: catalog.ListUnits(catalog_pb2.ListUnitsRequest(), timeout=10),
            "GetUnit": lambda: catalog.GetUnit(catalog_pb2.GetUnitRequest(slug="bim-son"), timeout=10),
        }
        try:
            requests[name]()
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
        return OK, ""


CELLS = [(method, area) for method in AREA_METHODS for area in AREAS] + [(m, None) for m in OTHER_METHODS]


@pytest.mark.parametrize("caller", CALLERS)
def test_every_method_in_every_area_is_allowed_or_denied_as_the_list_says(edge: Edge, caller: str):
    wrong = []
    for method, area in CELLS:
        want = expected(caller, method, area)
        before = edge.snapshot()
        got, details = call(edge, caller, method, area)
        after = edge.snapshot()
        cell = f"{caller} × {method.rpartition('/')[2]} × {area or '-'}"
        if want is OK:
            # Through the gate: the call itself may still be refused for what it asks (an online
            # dossier accepted by an earlier cell cannot be refused any more), never for who asks.
            if got in DENIALS:
                wrong.append(f"{cell}: allowed by the list, got {got.name} {details}")
        else:
            if got is not want:
                wrong.append(f"{cell}: want {want.name}, got {got.name} {details}")
            if after != before[:2] + (0,):
                wrong.append(f"{cell}: denied, but something was stored or published ({before} → {after})")
            if want is grpc.StatusCode.PERMISSION_DENIED and caller not in details:
                wrong.append(f"{cell}: the message does not name the agency: {details}")
    assert wrong == [], "\n".join(wrong)


def test_reads_and_submissions_allowed_by_the_list_succeed(edge: Edge):
    """Passing the gate is not enough for these: they must answer OK (the state-changing by-code
    methods may legitimately refuse a dossier an earlier cell already moved on)."""
    for area in AREAS:
        for method in ("SubmitDossier", "GetDossier", "TrackDossier"):
            assert call(edge, "cong-dvc-quoc-gia", f"{INTAKE}/{method}", area)[0] is OK, (method, area)
    assert call(edge, "ubnd-thi-xa-bim-son", f"{INTAKE}/AcceptDossier", "bim-son")[0] in (
        OK, grpc.StatusCode.FAILED_PRECONDITION)
