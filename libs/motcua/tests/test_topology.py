"""Names of exchanges and queues (unit) and their declaration on a real RabbitMQ (integration, on a
private vhost so a running platform never sees these messages)."""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import pytest
from kombu import Connection
from motcua_dev.harness import private_vhost

from motcua.messaging import topology

DELAYS = [200, 400]
SERVICES = ("archive", "notify")
DISTRICTS = ("bim-son", "ba-thuoc")


# -- names (unit) ---------------------------------------------------------------------------------


def test_queue_names():
    assert topology.queue_name("routing", "bim-son") == "routing.bim-son"
    assert topology.queue_name("intake", "thanh-hoa-2") == "intake.thanh-hoa-2"
    assert topology.retry_queue_name("routing.bim-son", 2) == "routing.bim-son.retry.2"
    assert topology.dlq_name("routing.bim-son") == "routing.bim-son.dlq"
    assert topology.event_routing_key("ba-thuoc", "dossier.returned") == "ba-thuoc.dossier.returned"
    assert set(topology.SERVICES) == {"intake", "routing", "signing", "notify", "archive"}
    for service in topology.SERVICES:
        assert topology.queue_name(service, "bim-son") == f"{service}.bim-son"


@pytest.mark.parametrize("service", ["billing", "", "Routing", "routing.bim-son", "notify "])
def test_queue_name_refuses_an_unknown_service(service):
    with pytest.raises(ValueError, match="unknown service"):
        topology.queue_name(service, "bim-son")


@pytest.mark.parametrize("area", ["Bim-Son", "bim son", "bim_son", "bim.son", "-bim", "bim-", "bim--son",
                                      "", "bim-son\n", "bình-sơn", "#", "*"])
def test_queue_name_refuses_a_bad_area_slug(area):
    with pytest.raises(ValueError, match="area"):
        topology.queue_name("routing", area)
    with pytest.raises(ValueError, match="area"):
        topology.event_routing_key(area, "dossier.received")


def test_service_queue_bindings_follow_the_subscriptions():
    archive = topology.service_queue("archive", "bim-son")
    assert archive.name == "archive.bim-son" and archive.durable
    keys = {(b.exchange.name, b.routing_key) for b in archive.bindings}
    life = ("dossier.received", "dossier.form_issued", "dossier.assigned", "dossier.step_completed",
            "dossier.supplemented", "document.signed", "dossier.returned")
    assert keys == {("motcua.work", "archive.bim-son")} | {("motcua.events", f"bim-son.{name}") for name in life}
    notify = {(b.exchange.name, b.routing_key) for b in topology.service_queue("notify", "ba-thuoc").bindings}
    assert notify == {("motcua.work", "notify.ba-thuoc"), ("motcua.events", "ba-thuoc.#")}
    routing = {(b.exchange.name, b.routing_key) for b in topology.service_queue("routing", "bim-son").bindings}
    assert routing == {("motcua.work", "routing.bim-son"), ("motcua.events", "bim-son.dossier.supplemented"),
                       ("motcua.events", "bim-son.dossier.withdrawn")}


def test_retry_queues_dead_letter_back_to_their_queue():
    queues = topology.retry_queues("routing.bim-son", [100, 2000, 30000])
    assert [q.name for q in queues] == [f"routing.bim-son.retry.{n}" for n in (1, 2, 3)]
    assert [q.queue_arguments for q in queues] == [
        {"x-message-ttl": ttl, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "routing.bim-son"}
        for ttl in (100, 2000, 30000)
    ]
    assert topology.parking_queue("routing.bim-son").name == "routing.bim-son.dlq"


# -- declaration on a real broker (integration) ---------------------------------------------------


@pytest.fixture(scope="module")
def declared(amqp_uri):
    """A private vhost with the archive and notify queues of two areas declared."""
    with private_vhost(amqp_uri) as uri:
        with Connection(uri) as connection:
            names = topology.declare(connection, SERVICES, DISTRICTS, DELAYS)
            again = topology.declare(connection, SERVICES, DISTRICTS, DELAYS)  # idempotent
        assert again == names
        yield uri, names


def vhost_of(uri: str) -> str:
    return unquote(urlsplit(uri).path[1:])


def rabbitmqctl_json(*args: str) -> list[dict]:
    out = subprocess.run(["rabbitmqctl", "-q", *args, "--formatter", "json"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return json.loads(out)


@pytest.fixture
def channel(declared):
    connection = pika.BlockingConnection(pika.URLParameters(declared[0]))
    ch = connection.channel()
    ch.confirm_delivery()
    yield ch
    if connection.is_open:
        connection.close()


def message_count(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def wait_count(channel, queue: str, expected: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := message_count(channel, queue)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


@pytest.mark.integration
def test_declare_creates_service_retry_parking_and_stream_queues(declared):
    uri, names = declared
    expected = {"motcua.events.stream"}
    for service in SERVICES:
        for district in DISTRICTS:
            q = f"{service}.{district}"
            expected |= {q, f"{q}.retry.1", f"{q}.retry.2", f"{q}.dlq"}
    assert set(names) == expected and len(names) == len(expected)

    queues = {q["name"]: q for q in rabbitmqctl_json("list_queues", "-p", vhost_of(uri), "name", "arguments",
                                                     "type", "durable")}
    assert set(queues) == expected
    args = {name: {key: value for key, _kind, value in q["arguments"]} for name, q in queues.items()}
    for service in SERVICES:
        for district in DISTRICTS:
            q = f"{service}.{district}"
            assert args[q] == {} and args[f"{q}.dlq"] == {}
            assert args[f"{q}.retry.1"] == {"x-message-ttl": 200, "x-dead-letter-exchange": "",
                                            "x-dead-letter-routing-key": q}
            assert args[f"{q}.retry.2"] == {"x-message-ttl": 400, "x-dead-letter-exchange": "",
                                            "x-dead-letter-routing-key": q}
            for name in (q, f"{q}.retry.1", f"{q}.retry.2", f"{q}.dlq"):
                assert queues[name]["durable"] is True and queues[name]["type"] == "classic"
    stream = queues["motcua.events.stream"]
    assert stream["type"] == "stream" and stream["durable"] is True
    assert args["motcua.events.stream"] == {"x-queue-type": "stream", "x-max-age": "30D"}

    exchanges = {e["name"]: e for e in rabbitmqctl_json("list_exchanges", "-p", vhost_of(uri), "name", "type",
                                                         "durable")}
    assert exchanges["motcua.events"]["type"] == "topic" and exchanges["motcua.events"]["durable"]
    assert exchanges["motcua.work"]["type"] == "direct" and exchanges["motcua.work"]["durable"]


@pytest.mark.integration
def test_no_retry_queue_beyond_the_configured_delays(channel):
    channel.queue_declare("archive.bim-son.retry.2", passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare("archive.bim-son.retry.3", passive=True)
    assert closed.value.reply_code == 404


def publish(channel, exchange: str, routing_key: str, body: bytes, headers: dict | None = None) -> None:
    channel.basic_publish(exchange, routing_key, body,
                          pika.BasicProperties(delivery_mode=2, headers=headers or {}), mandatory=True)


def drain(channel, queue: str) -> list[bytes]:
    bodies = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


@pytest.mark.integration
def test_event_routes_to_the_subscribed_queues_of_its_district_only(channel):
    all_queues = [f"{s}.{d}" for s in SERVICES for d in DISTRICTS]
    for queue in all_queues:
        drain(channel, queue)

    publish(channel, "motcua.events", "bim-son.dossier.returned", b"returned-1",
            {"cloudEvents:type": "vn.motcua.dossier.returned.v1"})
    assert drain(channel, "archive.bim-son") == [b"returned-1"]
    assert drain(channel, "notify.bim-son") == [b"returned-1"]
    assert drain(channel, "archive.ba-thuoc") == []
    assert drain(channel, "notify.ba-thuoc") == []

    # archive reacts to a dossier's life and its return, not to notifications; notify to every
    # event of its district.
    publish(channel, "motcua.events", "ba-thuoc.notification.sent", b"sent-1")
    assert drain(channel, "notify.ba-thuoc") == [b"sent-1"]
    for queue in ("archive.ba-thuoc", "archive.bim-son", "notify.bim-son"):
        assert drain(channel, queue) == []


@pytest.mark.integration
def test_work_message_goes_to_its_own_queue_only(channel):
    for queue in [f"{s}.{d}" for s in SERVICES for d in DISTRICTS]:
        drain(channel, queue)
    publish(channel, "motcua.work", "archive.ba-thuoc", b"work-1")
    assert drain(channel, "archive.ba-thuoc") == [b"work-1"]
    for queue in ("archive.bim-son", "notify.ba-thuoc", "notify.bim-son"):
        assert drain(channel, queue) == []


@pytest.mark.integration
def test_every_event_is_kept_in_the_replay_stream(channel):
    marker = f"stream-{time.monotonic_ns()}".encode()
    publish(channel, "motcua.events", "ba-thuoc.document.signed", marker)
    channel.basic_qos(prefetch_count=100)
    seen: list[bytes] = []
    deadline = time.monotonic() + 5
    for method, _props, body in channel.consume("motcua.events.stream", inactivity_timeout=0.5,
                                                 arguments={"x-stream-offset": "first"}):
        if method is not None:
            seen.append(body)
            channel.basic_ack(method.delivery_tag)
        if marker in seen or time.monotonic() > deadline:
            break
    channel.cancel()
    assert marker in seen


@pytest.mark.integration
def test_retry_queue_returns_the_message_to_its_queue_after_its_ttl(channel):
    drain(channel, "notify.bim-son")
    publish(channel, "", "notify.bim-son.retry.2", b"later")
    assert message_count(channel, "notify.bim-son.retry.2") == 1
    assert message_count(channel, "notify.bim-son") == 0  # not before its delay
    assert wait_count(channel, "notify.bim-son", 1) == 1
    assert message_count(channel, "notify.bim-son.retry.2") == 0
    assert drain(channel, "notify.bim-son") == [b"later"]
