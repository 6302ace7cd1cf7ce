"""Work, retry and parking queues as classic (the local default) or quorum queues
(MOTCUA_QUEUE_TYPE), on the local broker: declared, a failed message retried through its retry
queue's TTL back to the work queue, and a queue never redeclared with the other type."""

from __future__ import annotations

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from motcua.messaging import topology

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_type(request):
    topology.use_queue_type(request.param)
    yield request.param
    topology.use_queue_type("classic")


@pytest.mark.parametrize("queue_type", ["classic", "quorum"], indirect=True)
def test_a_failed_message_comes_back_from_its_retry_queue(vhost_uri, queue_type):
    area = f"qt-{queue_type}"
    with Connection(vhost_uri) as connection:
        declared = topology.declare(connection, ["notify"], [area], [50], with_stream=False)
        main = f"notify.{area}"
        assert declared == [main, f"{main}.retry.1", f"{main}.dlq"]
        channel = connection.default_channel
        for name in declared:
            other = "quorum" if queue_type == "classic" else "classic"
            with pytest.raises(PreconditionFailed):  # the type is the queue's: others are refused
                probe = connection.channel()
                probe.queue_declare(name, durable=True, arguments={"x-queue-type": other})
        producer = connection.Producer(channel)
        producer.publish(b"{}", exchange="", routing_key=f"{main}.retry.1", declare=[])
        simple = connection.SimpleQueue(topology.service_queue("notify", area))
        message = simple.get(timeout=10)  # after the 50 ms TTL, dead-lettered back to the work queue
        assert message.body == b"{}"
        message.ack()
        simple.close()
