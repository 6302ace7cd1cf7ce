"""The unit of work, the message bus and inbound decoding, on fake ports (in-memory store, a
recording publisher): milliseconds, no broker."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from mongoengine import StringField
from motcua_dev.testing import memory_units_of_work

from motcua.errors import Conflict, InvalidArgument
from motcua.events.v1 import events_pb2
from motcua.messagebus import MessageBus, NoHandler
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import build_event, build_work
from motcua.messaging.inbound import Inbound
from motcua.messaging.outbox import AggregateSchema
from motcua.unit_of_work import UnitOfWork


class Counter(AggregateSchema):
    meta = {"collection": "counters", "indexes": [{"fields": ["name"], "unique": True}]}
    name = StringField(required=True)
    value = StringField(required=True)


def event(code: str = "C-1"):
    return build_event(name="dossier.returned", data=events_pb2.DossierReturned(code=code), source="/t",
                       subject=code, area="bim-son")


def test_commit_writes_the_document_with_its_messages_and_publishes_exactly_those():
    uows, publisher = memory_units_of_work()
    sent = event()

    def create(uow: UnitOfWork) -> str:
        uow.add(Counter, {"_id": "a", "name": "a", "value": "1"}, [sent])
        (stored,) = uow.commit()
        return stored["_id"]

    assert uows.run(create) == "a"
    assert [m.id for m in publisher.published] == [sent.id]
    stored = uows.store.collection(Counter).get("a")
    assert (stored["value"], stored["outbox"], stored["version"]) == ("1", [], 2)  # published, then removed


def test_nothing_is_written_or_sent_without_a_commit():
    uows, publisher = memory_units_of_work()

    def look(uow: UnitOfWork) -> None:
        uow.add(Counter, {"_id": "a", "name": "a", "value": "1"}, [event()])

    uows.run(look)
    assert uows.store.collection(Counter).get("a") is None and publisher.published == []


def test_a_stale_write_runs_the_use_case_again_on_what_the_other_writer_left():
    uows, publisher = memory_units_of_work()
    collection = uows.store.collection(Counter)
    collection.insert({"_id": "a", "name": "a", "value": "0"})
    attempts = []

    def increment(uow: UnitOfWork) -> str:
        doc = uow.get(Counter, "a")
        attempts.append(doc["value"])
        if len(attempts) == 1:  # another writer gets in between our read and our write
            collection.replace({**doc, "value": "10"}, doc["version"])
        uow.save(Counter, {**doc, "value": str(int(doc["value"]) + 1)}, [event()])
        uow.commit()
        return doc["value"]

    assert uows.run(increment) == "10"
    assert attempts == ["0", "10"]
    assert collection.get("a")["value"] == "11"
    assert len(publisher.published) == 1  # the stale attempt stored and sent nothing


def test_a_unique_key_taken_meanwhile_runs_the_use_case_again_which_finds_it():
    uows, publisher = memory_units_of_work()
    collection = uows.store.collection(Counter)

    def create_once(uow: UnitOfWork) -> str:
        if (found := uow.get(Counter, "a")) is not None:
            return f"found {found['value']}"
        collection.insert({"_id": "a", "name": "a", "value": "theirs"})  # a concurrent delivery won
        uow.add(Counter, {"_id": "a", "name": "a", "value": "ours"}, [event()])
        uow.commit()
        return "created"

    assert uows.run(create_once) == "found theirs"
    assert publisher.published == []


def test_a_use_case_that_always_meets_another_writer_ends_in_conflict_not_a_loop():
    uows, _ = memory_units_of_work()
    collection = uows.store.collection(Counter)
    collection.insert({"_id": "a", "name": "a", "value": "0"})

    def always_late(uow: UnitOfWork) -> None:
        doc = uow.get(Counter, "a")
        collection.replace(doc, doc["version"])
        uow.save(Counter, doc)
        uow.commit()

    with pytest.raises(Conflict, match="kept meeting other writers"):
        uows.run(always_late, what="always late")


def test_concurrent_writers_each_publish_their_own_messages_once():
    uows, publisher = memory_units_of_work()
    uows.store.collection(Counter).insert({"_id": "a", "name": "a", "value": "0"})

    def increment(uow: UnitOfWork) -> None:
        doc = uow.get(Counter, "a")
        uow.save(Counter, {**doc, "value": str(int(doc["value"]) + 1)}, [event()])
        uow.commit()

    threads = [threading.Thread(target=lambda: [uows.run(increment) for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [m.id for m in publisher.published]
    assert uows.store.collection(Counter).get("a")["value"] == "80"
    assert len(ids) == len(set(ids)) == 80


def test_a_committed_unit_of_work_takes_no_second_write():
    uows, _ = memory_units_of_work()
    uow = uows.start()
    uow.add(Counter, {"_id": "a", "name": "a", "value": "1"})
    uow.commit()
    with pytest.raises(RuntimeError):
        uow.add(Counter, {"_id": "b", "name": "b", "value": "1"})


# -- the bus and inbound decoding ---------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    code: str
    area: str


@dataclass(frozen=True)
class Render:
    dossier_id: str


def delivered(message) -> Delivery:
    out = message.to_outgoing()
    return Delivery(body=out.body, headers=out.headers, content_type=out.content_type, queue="archive.bim-son")


def inbound() -> Inbound:
    def render(work) -> Render:
        if not work.body.get("dossier_id"):
            raise InvalidArgument("dossier_id", "is required")
        return Render(work.body["dossier_id"])

    return Inbound(work={"archive.render": render},
                   events={"dossier.returned": lambda e: Archive(e.decode(events_pb2.DossierReturned).code, e.area)})


def test_a_delivery_becomes_its_message_and_reaches_its_handler():
    handled = []
    bus = MessageBus({Archive: handled.append, Render: handled.append})
    dispatch = inbound().dispatch(bus)
    dispatch(delivered(event("C-9")))
    dispatch(delivered(build_work(service="archive", area="bim-son", type="archive.render", body={"dossier_id": "d"})))
    assert handled == [Archive("C-9", "bim-son"), Render("d")]


def test_an_event_the_service_does_not_take_is_ignored_and_unknown_work_is_parked():
    handled = []
    dispatch = inbound().dispatch(MessageBus({Archive: handled.append}))
    other = build_event(name="dossier.received", data=events_pb2.DossierReceived(), source="/t", subject="C",
                        area="bim-son")
    dispatch(delivered(other))
    assert handled == []
    with pytest.raises(PermanentFailure, match="takes no work of type"):
        dispatch(delivered(build_work(service="archive", area="bim-son", type="archive.unknown", body={})))


@pytest.mark.parametrize("delivery", [
    Delivery(body=b"{not json", headers={"motcua-work-type": "archive.render", "message-id": "m"},
             content_type="application/json", queue="archive.bim-son"),
    delivered(build_work(service="archive", area="bim-son", type="archive.render", body={})),
    Delivery(body=b"\xff\xff", headers={**event().headers()}, content_type="application/protobuf",
             queue="archive.bim-son"),
], ids=["undecodable", "refused-by-its-builder", "payload-not-its-protobuf"])
def test_what_cannot_become_a_message_is_parked_with_its_reason(delivery):
    with pytest.raises(PermanentFailure):
        inbound().dispatch(MessageBus({Archive: print, Render: print}))(delivery)


def test_a_handler_refusing_for_good_parks_the_message_and_other_failures_are_retried():
    def refuse(message):
        raise InvalidArgument("code", "is not one of ours")

    def flaky(message):
        raise ConnectionError("S3 unreachable")

    with pytest.raises(PermanentFailure, match="code: is not one of ours"):
        inbound().dispatch(MessageBus({Archive: refuse}))(delivered(event()))
    with pytest.raises(ConnectionError):
        inbound().dispatch(MessageBus({Archive: flaky}))(delivered(event()))


def test_the_bus_says_when_a_message_has_no_handler():
    with pytest.raises(NoHandler, match="Render"):
        MessageBus({Archive: print}).handle(Render("d"))
