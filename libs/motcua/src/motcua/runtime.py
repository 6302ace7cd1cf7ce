"""The connections every process of a service needs, made once at start-up (never at import)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from motcua.messaging import topology
from motcua.messaging.consuming import Delivery, MessageHandling, ProcessedMessage
from motcua.messaging.outbox import Outbox, OutboxRelay
from motcua.messaging.publisher import Publisher
from motcua.objects import ObjectStore
from motcua.settings import PlatformSettings
from motcua.store import Store, open_store
from motcua.store.port import Collection
from motcua.unit_of_work import UnitsOfWork


@dataclass
class Infrastructure:
    settings: PlatformSettings
    store: Store
    objects: ObjectStore
    publisher: Publisher
    outbox: Outbox

    @classmethod
    def connect(cls, settings: PlatformSettings) -> Infrastructure:
        topology.use_queue_type(settings.queue_type)
        publisher = Publisher(settings.amqp_uri)
        return cls(settings=settings, store=open_store(settings), objects=ObjectStore(settings),
                   publisher=publisher, outbox=Outbox(publisher, timedelta(seconds=settings.outbox_grace_s)))

    def units_of_work(self) -> UnitsOfWork:
        """How every use case of the service writes (:mod:`motcua.unit_of_work`)."""
        return UnitsOfWork(self.store, self.outbox)

    def message_handling(self, consumer: str) -> MessageHandling:
        return MessageHandling(consumer, self.store.collection(ProcessedMessage), self.publisher,
                               self.settings.retry_delays_ms)

    def relay(self, schemas: Sequence[type]) -> OutboxRelay:
        collections: list[Collection] = [self.store.collection(schema) for schema in schemas]
        return OutboxRelay(collections, self.outbox)  # the outbox's grace: writers publish within half of it

    def close(self) -> None:
        self.publisher.close()
        self.store.close()


class WorkerRuntime:
    """What a service's nameko worker delegates to: handle a delivery, sweep the outbox.

    ``dispatch`` is the service's application-layer entry for one message; ``timers`` the
    service's periodic jobs by name (their intervals are given to :func:`motcua.worker.main`)."""

    def __init__(self, infra: Infrastructure, consumer: str, dispatch, outbox_schemas: Sequence[type],
                 timers: Mapping[str, Callable[[], object]] | None = None):
        self.infra = infra
        self._handling = infra.message_handling(consumer)
        self._dispatch = dispatch
        self._relay = infra.relay(outbox_schemas)
        self._timers = dict(timers or {})

    def tick(self, name: str) -> object:
        """Run the periodic job ``name`` once."""
        return self._timers[name]()

    def handle(self, delivery: Delivery) -> str:
        return self._handling.run(delivery, self._dispatch)

    def relay(self) -> int:
        return self._relay.sweep()

    def close(self) -> None:
        self.infra.close()
