"""Archive's gRPC api process (grpcio): motcua.archive.v1.ArchiveService — packages, download
URLs, on-demand verification, listing. decode → use case → encode; errors become status codes in
motcua.grpcsupport (health, reflection, mutual TLS and the access list come from there too)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import grpc
from minio.error import S3Error

from archive.adapters.bags import validate_problem
from archive.application.packages import Packages
from archive.config import ArchiveSettings
from archive.entrypoints import bootstrap
from motcua import logs
from motcua.archive.v1 import archive_pb2, archive_pb2_grpc
from motcua.errors import FailedPrecondition
from motcua.grpcsupport import Api, serve
from motcua.protobufs import datetime_of, timestamp
from motcua.runtime import Infrastructure

log = logging.getLogger(__name__)
SERVICE_NAME = archive_pb2.DESCRIPTOR.services_by_name["ArchiveService"].full_name


@contextlib.contextmanager
def _storage_refusals() -> Iterator[None]:
    """An S3 refusal that is not "missing" or "unavailable" (those map to DATA_LOSS and UNAVAILABLE):
    a clear FAILED_PRECONDITION naming the S3 error code, never INTERNAL."""
    try:
        yield
    except S3Error as exc:
        raise FailedPrecondition(f"the archive's object storage refused the request ({exc.code})") from exc


class ArchiveServicer(archive_pb2_grpc.ArchiveServiceServicer):
    def __init__(self, packages: Packages):
        self._packages = packages

    def GetPackage(self, request: archive_pb2.GetPackageRequest, context: grpc.ServicerContext):
        return archive_pb2.GetPackageResponse(package=package_message(self._packages.get(request.code)))

    def GetDownloadUrl(self, request: archive_pb2.GetDownloadUrlRequest, context: grpc.ServicerContext):
        with _storage_refusals():
            url = self._packages.download_url(request.code, request.path, request.copy)
        return archive_pb2.GetDownloadUrlResponse(url=url.url, expires_at=timestamp(url.expires_at), sha256=url.sha256)

    def VerifyPackage(self, request: archive_pb2.VerifyPackageRequest, context: grpc.ServicerContext):
        with _storage_refusals():
            verification = self._packages.verify(request.code)
        return archive_pb2.VerifyPackageResponse(fixity=fixity_message(verification.fixity),
                                                 bag_valid=verification.bag_problem is None,
                                                 bag_problem=verification.bag_problem or "")

    def ListPackages(self, request: archive_pb2.ListPackagesRequest, context: grpc.ServicerContext):
        start = datetime_of(request.archived_from, "archived_from") if request.HasField("archived_from") else None
        end = datetime_of(request.archived_to, "archived_to") if request.HasField("archived_to") else None
        page, token = self._packages.list(request.area, start, end, request.page_size, request.page_token)
        return archive_pb2.ListPackagesResponse(packages=[package_message(e) for e in page], next_page_token=token)


def fixity_message(fixity: dict[str, Any]) -> archive_pb2.FixityResult:
    checked = fixity.get("checked_at")
    return archive_pb2.FixityResult(
        state=fixity.get("state", ""), checked_at=timestamp(datetime.fromisoformat(checked)) if checked else None,
        copies=[f"{c['copy']}: {c['state']}" for c in fixity.get("copies", ())])


def package_message(entry: dict[str, Any]) -> archive_pb2.Package:
    current = entry.get("fixity", {}).get("current") or {}
    return archive_pb2.Package(
        code=entry["code"], dossier_id=entry["dossier_id"], area=entry["area"],
        package_sha256=entry["package_sha256"], package_size=entry["package_size"],
        manifest_sha256=entry.get("manifest_sha256", ""), retention=entry["retention"],
        retain_until=timestamp(datetime.fromisoformat(entry["retain_until"])), lock_mode=entry["lock_mode"],
        legal_hold=bool(entry.get("legal_hold")),
        copies=[archive_pb2.StoredCopy(name=c["name"], endpoint=c["endpoint"], bucket=c["bucket"], key=c["key"],
                                       version_id=c["version_id"],
                                       current_version_id=current.get(c["name"], c["version_id"]))
                for c in entry["copies"]],
        ledger=archive_pb2.LedgerEntry(seq=entry["seq"], hash=entry["hash"], prev_hash=entry["prev_hash"],
                                       recorded_at=timestamp(datetime.fromisoformat(entry["recorded_at"]))),
        fixity=fixity_message(entry.get("fixity") or {}),
        documents=[archive_pb2.PackageDocument(path=d["path"], sha256=d["sha256"], size=d["size"], role=d["role"],
                                               media_type=d["media_type"]) for d in entry.get("documents", ())])


def build_packages(settings: ArchiveSettings, infra: Infrastructure) -> Packages:
    copies = bootstrap.vaults(settings)
    uows = infra.units_of_work()
    return Packages(bootstrap.ledger(settings, uows), bootstrap.fixity(settings, uows, copies), copies,
                    infra.objects, bootstrap.LedgerRecord, validate_problem,
                    timedelta(seconds=settings.archive_url_ttl_s), settings.clock())


def build_api(settings: ArchiveSettings) -> Api:
    """What one server process of the api serves, on infrastructure of its own."""
    infra = Infrastructure.connect(settings)
    servicer = ArchiveServicer(build_packages(settings, infra))
    return Api(lambda s: archive_pb2_grpc.add_ArchiveServiceServicer_to_server(servicer, s), on_stop=infra.close)


def main() -> int:
    settings = ArchiveSettings.load()
    logs.configure("archive-api", settings.log_level)
    return serve("archive api", settings, [SERVICE_NAME], build_api)


if __name__ == "__main__":
    sys.exit(main())
