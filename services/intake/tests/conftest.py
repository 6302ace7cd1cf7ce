"""Fixtures of intake's tests.

Integration fixtures use the real things only: SeaweedFS's S3 server (a fresh bucket per test),
RabbitMQ (a private vhost for the session), and both backends of the persistence port (SQLite in
``tmp_path``, MongoDB through mongomock). ``dossiers`` is the Dossiers use case wired to them, once
per backend. ``broker`` is an independent pika client that sees what intake publishes, as the
provincial data platform and the routing service would. Unit tests request none of these, so they
stay pure and fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pika
import pytest
from motcua_dev.testing import S3Endpoint, drop_bucket, new_bucket_store
from motcua_dev.testing import SettableClock as Clock

from intake.adapters.catalog_file import load_catalog
from intake.adapters.records import RECORDS
from intake.application.dossiers import Dossiers
from intake.config import DEFAULT_CATALOG
from intake.domain.catalog import Catalog
from intake.domain.submission import Limits
from motcua.messaging.outbox import Outbox
from motcua.messaging.publisher import Publisher
from motcua.messaging.topology import EVENTS_EXCHANGE, WORK_EXCHANGE, queue_name
from motcua.objects import ObjectStore
from motcua.store import Store
from motcua.unit_of_work import UnitsOfWork

# Small on purpose, so an oversize document is cheap to build.
TEST_LIMITS = Limits(max_document_bytes=64 * 1024, max_documents=5, max_dossier_bytes=3 * 64 * 1024)
# 2026-11-25T18:00:00.123456Z is 2026-11-26 01:00 in Vietnam: codes carry 261126. The
# microseconds are there on purpose: the store keeps milliseconds.
TEST_NOW = datetime(2026, 11, 25, 18, 0, 0, 123456, tzinfo=UTC)


# -- object storage ------------------------------------------------------------------------------


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint) -> Iterator[ObjectStore]:
    """A fresh bucket: "nothing stored" can be checked by listing all of it."""
    store = new_bucket_store(s3_endpoint, prefix="intake-test")
    yield store
    drop_bucket(store)


# -- RabbitMQ ------------------------------------------------------------------------------------


@dataclass
class Received:
    routing_key: str
    exchange: str
    properties: pika.BasicProperties
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (self.properties.headers or {}).items()}


@dataclass
class BrokerProbe:
    """An independent AMQP client (pika, not kombu): its own exclusive queue bound to every public
    event, and the work queues ``routing.<area>`` of the catalog's areas, purged at start.

    Intake publishes with publisher confirms, so once a call returns its messages are already in
    these queues: reading right after the call needs no waiting, and an empty queue is a fact."""

    channel: pika.adapters.blocking_connection.BlockingChannel
    events_queue: str
    work_queues: dict[str, str] = field(default_factory=dict)

    def _drain(self, queue: str) -> list[Received]:
        out = []
        while True:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(Received(method.routing_key, method.exchange, properties, body))

    def events(self) -> list[Received]:
        """Every public event published since the last call."""
        return self._drain(self.events_queue)

    def work(self, area: str = "bim-son") -> list[Received]:
        """Every work message for routing in ``area`` since the last call."""
        return self._drain(self.work_queues[area])

    def pending(self) -> dict[str, int]:
        """Messages waiting in each probed queue (nothing is consumed)."""
        queues = [self.events_queue, *self.work_queues.values()]
        return {q: self.channel.queue_declare(q, passive=True).method.message_count for q in queues}


@pytest.fixture
def broker(vhost_uri: str, catalog: Catalog) -> Iterator[BrokerProbe]:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_uri))
    channel = connection.channel()
    channel.exchange_declare(EVENTS_EXCHANGE.name, exchange_type="topic", durable=True)
    channel.exchange_declare(WORK_EXCHANGE.name, exchange_type="direct", durable=True)
    events_queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(events_queue, EVENTS_EXCHANGE.name, routing_key="#")
    probe = BrokerProbe(channel, events_queue)
    for area in catalog.areas():  # only the queues the platform's workers consume
        name = queue_name("routing", area)
        # Declared as motcua.messaging.topology.work_queue declares it (durable, bound by name).
        channel.queue_declare(name, durable=True)
        channel.queue_bind(name, WORK_EXCHANGE.name, routing_key=name)
        channel.queue_purge(name)
        probe.work_queues[area] = name
    yield probe
    connection.close()


# -- store ---------------------------------------------------------------------------------------


# -- the use case --------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(TEST_NOW)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


@pytest.fixture
def limits() -> Limits:
    return TEST_LIMITS


@pytest.fixture
def dossiers(store: Store, bucket: ObjectStore, publisher: Publisher, catalog: Catalog, limits: Limits,
             clock: Clock) -> Dossiers:
    """The Dossiers use case on a fresh store (each backend), a fresh bucket and the private vhost,
    with a real Outbox and Publisher."""
    return Dossiers(UnitsOfWork(store, Outbox(publisher)), bucket, catalog, limits, RECORDS, clock=clock)
