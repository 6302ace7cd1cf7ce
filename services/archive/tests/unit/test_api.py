"""ArchiveService over a real gRPC server (motcua.grpcsupport) on fake ports: answers, paging, and
clear statuses for bad input (never INTERNAL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from motcua_dev.testing import MemoryObjects, memory_units_of_work

from archive.adapters.bags import build_package, validate_problem
from archive.adapters.records import DossierLifeRecord, LedgerRecord, LedgerStampRecord
from archive.application.archiving import ArchiveDossier, Archivist
from archive.application.fixity import Fixity
from archive.application.ledger import Ledger
from archive.application.packages import Packages
from archive.entrypoints.api import SERVICE_NAME, ArchiveServicer
from motcua.archive.v1 import archive_pb2, archive_pb2_grpc
from motcua.grpcsupport import build_server
from motcua.protobufs import timestamp

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CODE = "000.01.06.H56-261201-000"


@pytest.fixture(scope="module")
def stub(memory_vault_class):
    uows, publisher = memory_units_of_work()
    objects = MemoryObjects()
    vaults = [memory_vault_class("primary"), memory_vault_class("copy")]
    clock = [T0]
    archivist = Archivist(uows, objects, vaults, build_package, LedgerRecord, DossierLifeRecord, clock=lambda: clock[0])
    for n in range(1, 4):
        doc = objects.put_bytes(f"intake/d{n}", b"%PDF-1.7 " + bytes([n]), "application/pdf").to_dict()
        result = objects.put_bytes(f"signing/d{n}", b"%PDF-1.7 kq" + bytes([n]), "application/pdf").to_dict()
        clock[0] = T0 + timedelta(hours=n)
        archivist(ArchiveDossier(f"d{n}", f"{CODE}{n}", "bim-son", "bim-son", "1.001193", (doc,), result,
                                 T0, T0 + timedelta(hours=n)))
    packages = Packages(Ledger(uows, LedgerRecord, LedgerStampRecord), Fixity(uows, vaults, LedgerRecord), vaults,
                        objects, LedgerRecord, validate_problem, clock=lambda: T0)
    server, port, _ = build_server([SERVICE_NAME], lambda s: archive_pb2_grpc.add_ArchiveServiceServicer_to_server(
        ArchiveServicer(packages), s), "127.0.0.1", 0, True, 4)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield archive_pb2_grpc.ArchiveServiceStub(channel), channel
    channel.close()
    server.stop(0)


def test_a_package_its_url_and_its_verification(stub):
    stub, channel = stub
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    package = stub.GetPackage(archive_pb2.GetPackageRequest(code=f"{CODE}2")).package
    assert (package.dossier_id, package.ledger.seq, package.retention, package.lock_mode) == (
        "d2", 2, "permanent", "GOVERNANCE")
    assert [c.name for c in package.copies] == ["primary", "copy"] and package.fixity.state == "verified at writing"
    assert {d.role for d in package.documents} == {"submitted", "result"}
    url = stub.GetDownloadUrl(archive_pb2.GetDownloadUrlRequest(code=f"{CODE}2", copy="copy"))
    assert url.url.startswith("memory://copy/") and url.sha256 == package.package_sha256
    verified = stub.VerifyPackage(archive_pb2.VerifyPackageRequest(code=f"{CODE}2"))
    assert (verified.fixity.state, verified.bag_valid) == ("ok", True)
    assert list(verified.fixity.copies) == ["primary: ok", "copy: ok"]


def test_packages_of_an_area_and_period_come_in_pages(stub):
    stub, _ = stub
    first = stub.ListPackages(archive_pb2.ListPackagesRequest(area="bim-son", page_size=2))
    assert [p.code for p in first.packages] == [f"{CODE}1", f"{CODE}2"] and first.next_page_token
    second = stub.ListPackages(archive_pb2.ListPackagesRequest(area="bim-son", page_size=2,
                                                               page_token=first.next_page_token))
    assert [p.code for p in second.packages] == [f"{CODE}3"] and not second.next_page_token
    period = stub.ListPackages(archive_pb2.ListPackagesRequest(
        area="bim-son", archived_from=timestamp(T0 + timedelta(hours=2)),
        archived_to=timestamp(T0 + timedelta(hours=3))))
    assert [p.code for p in period.packages] == [f"{CODE}2"]
    assert stub.ListPackages(archive_pb2.ListPackagesRequest(area="ba-thuoc")).packages == []


@pytest.mark.parametrize(("call", "request_", "status", "words"), [
    ("GetPackage", archive_pb2.GetPackageRequest(code=""), grpc.StatusCode.INVALID_ARGUMENT, "code"),
    ("GetPackage", archive_pb2.GetPackageRequest(code="x" * 500), grpc.StatusCode.INVALID_ARGUMENT, "code"),
    ("GetPackage", archive_pb2.GetPackageRequest(code="nope"), grpc.StatusCode.NOT_FOUND, "no archived package"),
    ("GetDownloadUrl", archive_pb2.GetDownloadUrlRequest(code=f"{CODE}1", copy="third"),
     grpc.StatusCode.INVALID_ARGUMENT, "copy"),
    ("GetDownloadUrl", archive_pb2.GetDownloadUrlRequest(code=f"{CODE}1", path="data/../../etc/passwd"),
     grpc.StatusCode.NOT_FOUND, "no document"),
    ("VerifyPackage", archive_pb2.VerifyPackageRequest(code="\x00"), grpc.StatusCode.INVALID_ARGUMENT, "code"),
    ("ListPackages", archive_pb2.ListPackagesRequest(area=""), grpc.StatusCode.INVALID_ARGUMENT, "area"),
    ("ListPackages", archive_pb2.ListPackagesRequest(area="Bim Son"), grpc.StatusCode.INVALID_ARGUMENT, "area"),
    ("ListPackages", archive_pb2.ListPackagesRequest(area="bim-son", page_size=-1),
     grpc.StatusCode.INVALID_ARGUMENT, "page_size"),
    ("ListPackages", archive_pb2.ListPackagesRequest(area="bim-son", page_token="garbage!"),
     grpc.StatusCode.INVALID_ARGUMENT, "page_token"),
    ("ListPackages", archive_pb2.ListPackagesRequest(area="bim-son", archived_from=timestamp(T0),
                                                     archived_to=timestamp(T0)), grpc.StatusCode.INVALID_ARGUMENT,
     "archived_to"),
])
def test_bad_input_gets_a_clear_status(stub, call, request_, status, words):
    stub, _ = stub
    with pytest.raises(grpc.RpcError) as error:
        getattr(stub, call)(request_)
    assert error.value.code() == status and words in error.value.details()
