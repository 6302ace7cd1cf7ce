"""Publishing with publisher confirms: ``publish`` returns only once the broker has taken the
message (and written it to disk, for persistent messages on durable queues)."""

from __future__ import annotations

import logging

from kombu import Connection, Queue
from kombu.pools import ProducerPool, get_limit

from motcua import metrics
from motcua.messaging import topology
from motcua.messaging.envelope import OutgoingMessage

log = logging.getLogger(__name__)

_ENTITY_CACHE = 4096  # (exchange, routing key) pairs: event types x areas, work queues
_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


class Publisher:
    """Thread-safe (a pool of producers) and eventlet-safe once the process is monkey-patched."""

    def __init__(self, amqp_uri: str):
        self._connection = Connection(amqp_uri, transport_options={"confirm_publish": True},
                                      connect_timeout=5)
        # what the cost accounting counts: read from the transport's options, not assumed
        self._confirms = bool(self._connection.transport_options.get("confirm_publish"))
        # Pools of this publisher's own. kombu's global pool groups are keyed by the connection's
        # parameters, which a publish with a retry policy mutates (transport_options), so close()
        # used to close another pool than the one in use, and later publishers on the same broker
        # then failed with "Acquire on closed pool".
        self._producers = ProducerPool(self._connection.Pool(limit=get_limit()), limit=get_limit())
        self._entities: dict[tuple[str, str], list] = {}  # (exchange, routing key) -> to declare

    def publish(self, message: OutgoingMessage, declare_queue: Queue | None = None) -> None:
        """Publish and wait for the broker's confirm. ``declare_queue``: a queue to make sure of
        first (a retry or parking queue reached through the default exchange, which would
        otherwise drop the message silently if the queue were missing)."""
        # Exchanges and the target work queue are declared on first use (kombu remembers), so
        # the first message of a fresh broker is not dropped for want of them.
        declare = self._declarations(message)
        if declare_queue is not None:
            declare = [*declare, declare_queue]
        with self._producers.acquire(block=True, timeout=10) as producer:
            producer.publish(
                message.body,
                exchange=message.exchange,
                routing_key=message.routing_key,
                headers=dict(message.headers),
                content_type=message.content_type,
                content_encoding="binary",
                message_id=message.id,
                delivery_mode=2,
                declare=declare,
                retry=True,
                retry_policy=_RETRY_POLICY,
            )
        metrics.published(message.exchange, self._confirms)

    def _declarations(self, message: OutgoingMessage) -> list:
        """What to declare before publishing ``message``: built once per exchange and routing key
        (a kombu Queue costs more to build than the publish itself takes in Python)."""
        key = (message.exchange, message.routing_key)
        declare = self._entities.get(key)
        if declare is None:
            if message.exchange == topology.EVENTS_EXCHANGE.name:
                declare = [topology.EVENTS_EXCHANGE]
            elif message.exchange == topology.WORK_EXCHANGE.name:
                declare = [topology.work_queue(message.routing_key)]
            else:
                declare = []
            if len(self._entities) < _ENTITY_CACHE:
                self._entities[key] = declare
        return declare

    def publish_all(self, messages: list[OutgoingMessage]) -> None:
        for message in messages:
            self.publish(message)

    def close(self) -> None:
        self._producers.force_close_all()
        self._producers.connections.force_close_all()
        self._connection.release()
