"""Archive's use case on fake ports (in-memory store and objects, a recording publisher)."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime

import pytest
from motcua_dev.testing import MemoryObjects, memory_units_of_work

from archive.adapters.records import PackageRecord
from archive.application.archiving import ArchiveDossier, Archivist
from archive.entrypoints.messages import INBOUND, archive_dossier
from motcua.events.v1 import events_pb2
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import build_event
from motcua.protobufs import document_ref, timestamp

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def world():
    uows, publisher = memory_units_of_work()
    objects = MemoryObjects()
    submitted = objects.put_bytes("intake/d1", b"%PDF-1.7 don", "application/pdf").to_dict()
    result = objects.put_bytes("signing/d1", b"%PDF-1.7 ket qua", "application/pdf").to_dict()
    command = ArchiveDossier(dossier_id="d1", code="000.01.06.H56-261201-0001", area="bim-son",
                             receiving_unit="phuong-ba-dinh", procedure_code="1.001193",
                             documents=({**submitted, "name": "to-khai.pdf"},), result={**result, "name": "kq.pdf"},
                             received_at=T0, returned_at=T0)
    archivist = Archivist(uows, objects, retention="permanent", clock=lambda: T0)
    return uows, publisher, objects, archivist, command


def test_a_returned_dossier_is_packed_stored_and_announced_once(world):
    uows, publisher, objects, archivist, command = world
    archivist(command)
    archivist(command)  # delivered again
    (record,) = uows.store.collection(PackageRecord).find({"_id": "d1"})
    assert (record["area"], record["document_count"], record["outbox"]) == ("bim-son", 2, [])
    assert publisher.types() == ["vn.motcua.dossier.archived.v1"]
    archived = events_pb2.DossierArchived.FromString(publisher.published[0].body)
    assert (archived.receiving_unit, archived.area, archived.district) == ("phuong-ba-dinh", "bim-son",
                                                                           "phuong-ba-dinh")
    assert publisher.published[0].routing_key == "bim-son.dossier.archived"
    with tarfile.open(fileobj=io.BytesIO(objects.objects[record["package"]["key"]])) as tar:
        assert any(name.endswith("bag-info.txt") for name in tar.getnames())


def test_an_unreachable_object_store_stores_and_announces_nothing(world):
    uows, publisher, objects, archivist, command = world
    objects.fail = True
    with pytest.raises(ConnectionError):  # retried by the queue's budget
        archivist(command)
    assert uows.store.collection(PackageRecord).get("d1") is None and publisher.published == []


def test_the_worker_turns_dossier_returned_into_the_command_and_parks_a_malformed_one(world):
    uows, publisher, objects, archivist, command = world
    event = build_event(name="dossier.returned", source="/t", subject=command.code, area="bim-son",
                        data=events_pb2.DossierReturned(
                            dossier_id="d1", code=command.code, receiving_unit="phuong-ba-dinh",
                            procedure_code="1.001193", documents=[document_ref(d) for d in command.documents],
                            result=document_ref(command.result), received_at=timestamp(T0),
                            returned_at=timestamp(T0)))
    built = archive_dossier(event)
    assert (built.dossier_id, built.code, built.area, built.receiving_unit, built.received_at, built.traceparent) == (
        "d1", command.code, "bim-son", "phuong-ba-dinh", T0, event.traceparent)
    assert [d["key"] for d in built.documents] == [d["key"] for d in command.documents]
    assert built.result["sha256"] == command.result["sha256"]
    out = event.to_outgoing()
    dispatch = INBOUND.dispatch(MessageBus({ArchiveDossier: archivist}))
    dispatch(Delivery(out.body, out.headers, out.content_type, "archive.bim-son"))
    assert publisher.types() == ["vn.motcua.dossier.archived.v1"]
    with pytest.raises(PermanentFailure):
        dispatch(Delivery(b"\x08\xff", out.headers, out.content_type, "archive.bim-son"))
