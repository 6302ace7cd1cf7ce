"""Operators' tools against a real RabbitMQ: parked messages listed and replayed, events read
back from the stream and republished to a subscriber's queue."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pika
import pytest
from kombu import Connection
from motcua_dev.harness import private_vhost

from motcua import operate
from motcua.events.v1 import events_pb2
from motcua.messaging import topology
from motcua.messaging.consuming import Delivery, MessageHandling, PermanentFailure
from motcua.messaging.envelope import build_event, build_work
from motcua.messaging.publisher import Publisher
from motcua.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration
QUEUE = "routing.bim-son"


@pytest.fixture
def vhost(amqp_uri):
    with private_vhost(amqp_uri, prefix="operate-test") as uri:
        with Connection(uri) as connection:
            topology.declare(connection, ["routing"], ["bim-son"], [100])
        yield uri


def get_all(uri: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    found = []
    while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
        found.append((message[1], message[2]))
    connection.close()
    return found


def park(uri: str, tmp_path, n: int) -> None:
    from motcua.messaging.consuming import ProcessedMessage

    publisher = Publisher(uri)
    store = SqliteStore(tmp_path / "processed.sqlite3")
    handling = MessageHandling("routing", store.collection(ProcessedMessage), publisher, [100])
    for i in range(n):
        work = build_work(service="routing", area="bim-son", type="routing.route_dossier", body={"n": i})
        out = work.to_outgoing()
        delivery = Delivery(body=out.body, headers=dict(out.headers), content_type=out.content_type, queue=QUEUE)

        def fail(_):
            raise PermanentFailure("unknown procedure 9.999999")

        assert handling.run(delivery, fail) == "parked"
    publisher.close()
    store.close()


def test_parked_messages_are_listed_without_being_removed(vhost, tmp_path):
    park(vhost, tmp_path, 3)
    listed = operate.list_parked(vhost, QUEUE)
    assert len(listed) == 3
    assert all(p.origin_queue == QUEUE and "unknown procedure 9.999999" in p.last_error for p in listed)
    assert all(p.attempt == 1 for p in listed)
    assert len(operate.list_parked(vhost, QUEUE)) == 3  # still there


def test_replay_moves_parked_messages_back_with_a_fresh_retry_budget(vhost, tmp_path):
    park(vhost, tmp_path, 2)
    assert operate.replay_parked(vhost, QUEUE) == 2
    assert operate.list_parked(vhost, QUEUE) == []
    back = get_all(vhost, QUEUE)
    assert len(back) == 2
    for properties, _ in back:
        assert "motcua-attempt" not in properties.headers
        assert properties.headers["motcua-replayed-from"] == f"{QUEUE}.dlq"
        assert properties.headers["motcua-work-type"] == "routing.route_dossier"


def test_events_are_read_back_from_the_stream_and_republished(vhost):
    publisher = Publisher(vhost)
    sent = []
    for n in range(5):
        event = build_event(name="dossier.received", source="/test", subject=f"CODE-{n}", area="bim-son",
                            data=events_pb2.DossierReceived(code=f"CODE-{n}", area="bim-son"))
        publisher.publish(event.to_outgoing())
        sent.append(event.id)
        if n == 2:
            time.sleep(1.1)  # stream timestamps have second resolution
            middle = datetime.now(UTC)
            time.sleep(0.1)
    publisher.close()

    everything = list(operate.read_events(vhost, "first", limit=10, idle_s=1))
    assert [e.id for e in everything] == sent
    assert [e.offset for e in everything] == sorted(e.offset for e in everything)
    assert everything[0].type == "vn.motcua.dossier.received.v1"

    from_offset = list(operate.read_events(vhost, everything[3].offset, limit=10, idle_s=1))
    assert [e.id for e in from_offset] == sent[3:]
    since = list(operate.read_events(vhost, middle, limit=10, idle_s=1))
    assert [e.id for e in since][-2:] == sent[3:] and sent[0] not in [e.id for e in since]

    assert operate.republish(vhost, everything[:2], QUEUE) == 2
    copies = get_all(vhost, QUEUE)
    assert [p.headers["cloudEvents:id"] for p, _ in copies] == sent[:2]
