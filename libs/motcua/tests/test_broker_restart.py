"""A publisher and an event subscriber across a broker restart, on a private RabbitMQ node (the
shared broker is never stopped): the publisher fails while the broker is away and publishes again,
without being rebuilt, once it is back; the subscriber reconnects and misses nothing."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection
from motcua_dev.harness import EventCollector
from motcua_dev.testing import private_rabbitmq

from motcua.messaging import topology
from motcua.messaging.envelope import OutgoingMessage
from motcua.messaging.publisher import Publisher

pytestmark = pytest.mark.integration


def event(area: str = "bim-son") -> OutgoingMessage:
    event_id = str(uuid.uuid4())
    return OutgoingMessage(id=event_id, exchange=topology.EVENTS_EXCHANGE.name,
                           routing_key=f"{area}.dossier.received", body=event_id.encode(),
                           headers={"cloudEvents:id": event_id, "cloudEvents:subject": "X-1"},
                           content_type="application/protobuf")


def test_publisher_and_subscriber_outlive_a_broker_restart(tmp_path):
    with private_rabbitmq(tmp_path / "rabbit") as broker:
        with Connection(broker.amqp_uri) as connection:
            topology.EVENTS_EXCHANGE(connection.default_channel).declare()
        events = EventCollector(broker.amqp_uri, durable=True).start()
        publisher = Publisher(broker.amqp_uri)
        try:
            before = event()
            publisher.publish(before)
            assert events.wait_until(lambda seen: len(seen) >= 1, timeout=30)
            broker.stop()
            with pytest.raises(Exception):  # noqa: B017 - whichever kombu raises; it must not hang
                publisher.publish(event())
            broker.start()
            after = [event() for _ in range(3)]
            publisher.publish_all(after)  # the same publisher, not rebuilt
            wanted = {before.id, *(m.id for m in after)}
            assert events.wait_until(lambda seen: wanted <= {e.id for e in seen}, timeout=60), \
                [e.id for e in events.seen()]
            assert events.reconnects >= 1
        finally:
            publisher.close()
            events.stop()
