"""Archive's use case: when a dossier is returned, pack its documents and signed result into an
archival package, store it, and publish dossier.archived — once per dossier, however often the
dossier.returned event arrives (one package record per dossier, written in a unit of work)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from archive.adapters.bags import build_bag
from archive.adapters.records import PackageRecord
from archive.domain.package import PackageFile, bag_info, package_files
from motcua.events.v1 import events_pb2
from motcua.messaging.envelope import build_event
from motcua.objects import ObjectRef, ObjectStore
from motcua.protobufs import document_ref, timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork

log = logging.getLogger(__name__)
SOURCE = "/motcua/archive"
OBJECT_PREFIX = "archive"


@dataclass(frozen=True)
class ArchiveDossier:
    """Archive a returned dossier (from routing's dossier.returned)."""

    dossier_id: str
    code: str
    area: str
    receiving_unit: str
    procedure_code: str
    documents: tuple[dict[str, Any], ...]  # document references as received and supplemented
    result: dict[str, Any]  # the signed result's reference
    received_at: datetime
    returned_at: datetime
    traceparent: str | None = None


class Archivist:
    """Handles :class:`ArchiveDossier`."""

    def __init__(self, uows: UnitsOfWork, objects: ObjectStore, retention: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._uows = uows
        self._objects = objects
        self._retention = retention
        self._clock = clock

    def __call__(self, command: ArchiveDossier) -> None:
        self._uows.run(lambda uow: self._archive(uow, command), what=f"archiving {command.code}")

    def _archive(self, uow: UnitOfWork, c: ArchiveDossier) -> None:
        if uow.get(PackageRecord, c.dossier_id) is not None:
            return  # archived before: its write (or the relay) publishes what it caused
        files = package_files(list(c.documents), c.result)
        info = bag_info(code=c.code, procedure_code=c.procedure_code, receiving_unit=c.receiving_unit,
                        received_at=c.received_at, returned_at=c.returned_at, document_count=len(files),
                        retention=self._retention)
        packed, manifest_sha256 = build_bag(c.code, files, self._read, info)
        package = self._objects.put_bytes(f"{OBJECT_PREFIX}/{c.dossier_id}", packed, "application/x-tar").to_dict()
        now = self._clock()
        archived = build_event(
            name="dossier.archived", source=SOURCE, subject=c.code, area=c.area, traceparent=c.traceparent,
            data=events_pb2.DossierArchived(
                dossier_id=c.dossier_id, code=c.code, district=c.receiving_unit, receiving_unit=c.receiving_unit,
                area=c.area, package=document_ref({**package, "name": f"{c.code}.tar"}),
                manifest_sha256=manifest_sha256, document_count=len(files), archived_at=timestamp(now)))
        uow.add(PackageRecord, {"_id": c.dossier_id, "code": c.code, "area": c.area, "package": package,
                                "manifest_sha256": manifest_sha256, "document_count": len(files),
                                "archived_at": now}, [archived])
        uow.commit()
        log.info("dossier archived", extra={"files": len(files), "bytes": package["size"]})

    def _read(self, file: PackageFile) -> bytes:
        return self._objects.get(ObjectRef(key=file.key, sha256=file.sha256, size=file.size,
                                           media_type=file.media_type))
