"""Archive's use case: when a dossier is returned, pack its documents and signed result into an
archival package, store it, and publish dossier.archived — once per dossier."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from archive.adapters.bags import build_bag
from archive.adapters.records import PackageRecord
from archive.domain.package import PackageFile, bag_info, package_files
from motcua.events.v1 import events_pb2
from motcua.logs import bind
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import CloudEvent, InvalidEnvelope, build_event, parse_event
from motcua.messaging.outbox import Outbox, add_messages, message_ids
from motcua.objects import ObjectRef, ObjectStore
from motcua.protobufs import datetime_of, document_ref, document_ref_dict, timestamp
from motcua.store.port import DuplicateKey, Store

log = logging.getLogger(__name__)
SOURCE = "/motcua/archive"
OBJECT_PREFIX = "archive"


class Archivist:
    def __init__(self, store: Store, objects: ObjectStore, outbox: Outbox, retention: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._packages = store.collection(PackageRecord)
        self._objects = objects
        self._outbox = outbox
        self._retention = retention
        self._clock = clock

    def dispatch(self, delivery: Delivery) -> None:
        try:
            event = parse_event(delivery.body, delivery.headers, delivery.content_type)
        except InvalidEnvelope as exc:
            raise PermanentFailure(str(exc)) from exc
        if event.name != "dossier.returned":
            return  # not ours to archive (bindings should not deliver it)
        with bind(dossier_code=event.subject, area=event.area):
            self._archive(event)

    def _archive(self, event: CloudEvent) -> None:
        returned = event.decode(events_pb2.DossierReturned)
        existing = self._packages.get(returned.dossier_id)
        if existing is not None:
            # Archived before: what its write left pending is that writer's to publish, or the
            # relay's after a crash (publishing it here could publish it twice).
            return
        documents = [document_ref_dict(d) for d in returned.documents]
        files = package_files(documents, document_ref_dict(returned.result))
        info = bag_info(code=returned.code, procedure_code=returned.procedure_code,
                        receiving_unit=returned.receiving_unit or returned.district,
                        received_at=datetime_of(returned.received_at),
                        returned_at=datetime_of(returned.returned_at), document_count=len(files),
                        retention=self._retention)
        packed, manifest_sha256 = build_bag(returned.code, files, self._read, info)
        package = self._objects.put_bytes(f"{OBJECT_PREFIX}/{returned.dossier_id}", packed,
                                          "application/x-tar").to_dict()
        now = self._clock()
        archived = build_event(
            name="dossier.archived", source=SOURCE, subject=returned.code, area=event.area,
            traceparent=event.traceparent, data=events_pb2.DossierArchived(
                dossier_id=returned.dossier_id, code=returned.code, district=returned.district,
                receiving_unit=returned.receiving_unit, area=event.area,
                package=document_ref({**package, "name": f"{returned.code}.tar"}),
                manifest_sha256=manifest_sha256, document_count=len(files), archived_at=timestamp(now)))
        record = add_messages({"_id": returned.dossier_id, "code": returned.code, "area": event.area,
                               "package": package, "manifest_sha256": manifest_sha256,
                               "document_count": len(files), "archived_at": now}, [archived])
        try:
            stored = self._packages.insert(record)
        except DuplicateKey:
            return
        log.info("dossier archived", extra={"files": len(files), "bytes": package["size"]})
        self._outbox.flush(self._packages, stored, message_ids([archived]))

    def _read(self, file: PackageFile) -> bytes:
        return self._objects.get(ObjectRef(key=file.key, sha256=file.sha256, size=file.size,
                                           media_type=file.media_type))
