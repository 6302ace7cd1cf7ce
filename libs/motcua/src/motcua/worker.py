"""The nameko edge shared by every service's worker process.

A worker is a nameko service built at start-up from the settings: one consumer entrypoint per
area queue (``<service>.<area>``, for every area it serves) and a timer that runs the outbox relay. Its handlers
hand each delivery to a :class:`~motcua.runtime.WorkerRuntime`, so nameko stays at the edge and
can be replaced. Call :func:`main` from a module that has monkey-patched eventlet first.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Mapping
from functools import partial

import eventlet
from kombu import Connection
from nameko import config as nameko_config
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from nameko.runners import ServiceRunner
from nameko.timer import timer

from motcua import logs
from motcua.messaging import topology
from motcua.messaging.consuming import Delivery
from motcua.runtime import WorkerRuntime
from motcua.settings import PlatformSettings

log = logging.getLogger(__name__)

SETTINGS_KEY = "MOTCUA_SETTINGS"
ACCEPT = ["application/json", "application/protobuf", "application/octet-stream"]


class DeliveryConsumer(Consumer):
    """nameko's consumer, handing the handler the whole message (headers included) and requeueing
    it if the handler raises — which it does only when the message could be neither processed
    nor set aside for retry (broker or store unreachable)."""

    def __init__(self, queue, **options):
        super().__init__(queue, requeue_on_error=True, accept=ACCEPT, **options)

    def handle_message(self, body, message):
        delivery = Delivery(
            body=message.body if isinstance(message.body, bytes) else message.body.encode(),
            headers=dict(message.headers or {}),
            content_type=message.content_type,
            queue=self.queue.name,
            routing_key=message.delivery_info.get("routing_key", ""),
            redelivered=bool(message.delivery_info.get("redelivered")),
        )
        handle_result = partial(self.handle_result, message)

        def spawn_worker():
            self.container.spawn_worker(self, (delivery,), {}, handle_result=handle_result)

        self.container.spawn_managed_thread(spawn_worker)


class Runtime(DependencyProvider):
    """Builds the service's WorkerRuntime once per container, from the settings in the config."""

    def __init__(self, factory: Callable[[PlatformSettings], WorkerRuntime]):
        self.factory = factory
        self.runtime: WorkerRuntime | None = None

    def setup(self):
        self.runtime = self.factory(nameko_config[SETTINGS_KEY])

    def stop(self):
        if self.runtime is not None:
            self.runtime.close()

    def get_dependency(self, worker_ctx):
        return self.runtime


def build_service(service: str, settings: PlatformSettings,
                  factory: Callable[[PlatformSettings], WorkerRuntime],
                  timers: Mapping[str, Callable[[PlatformSettings], float]] | None = None) -> type:
    """The nameko service class for these settings' areas; ``timers`` maps the name of each of
    the runtime's periodic jobs to its interval in seconds, read from the settings."""
    attrs: dict[str, object] = {"name": f"{service}_worker", "runtime": Runtime(factory)}
    for area in settings.served_areas():
        queue = topology.service_queue(service, area)

        def consume(self, delivery: Delivery) -> None:
            self.runtime.handle(delivery)

        consume.__name__ = f"consume_{area.replace('-', '_')}"
        attrs[consume.__name__] = DeliveryConsumer.decorator(
            queue, prefetch_count=settings.prefetch_count)(consume)

    def relay_outbox(self) -> None:
        self.runtime.relay()

    attrs["relay_outbox"] = timer(interval=settings.outbox_relay_interval_s)(relay_outbox)
    for name, interval in (timers or {}).items():
        def tick(self, _name: str = name) -> None:
            try:
                self.runtime.tick(_name)
            except Exception:  # noqa: BLE001 - a failed round is logged; the next one tries again
                log.exception("periodic job failed", extra={"job": _name})

        tick.__name__ = f"timer_{name}"
        attrs[tick.__name__] = timer(interval=interval(settings))(tick)
    return type(f"{service.title()}Worker", (), attrs)


def main(service: str, settings_class: type[PlatformSettings],
         factory: Callable[[PlatformSettings], WorkerRuntime],
         timers: Mapping[str, Callable[[PlatformSettings], float]] | None = None) -> int:
    settings = settings_class.load()
    logs.configure(f"{service}-worker", settings.log_level)
    service_class = build_service(service, settings, factory, timers)
    config = {"AMQP_URI": settings.amqp_uri, "max_workers": max(4, settings.prefetch_count),
              "PREFETCH_COUNT": settings.prefetch_count, SETTINGS_KEY: settings}
    with Connection(settings.amqp_uri) as connection:
        topology.declare(connection, [service], settings.served_areas(), settings.retry_delays_ms)
    with nameko_config.patch(config):
        runner = ServiceRunner()
        runner.add_service(service_class)

        def on_sigterm(signum, frame):
            # Signal handlers run on the hub and may not block: stop from a green thread.
            eventlet.spawn_n(runner.stop)

        signal.signal(signal.SIGTERM, on_sigterm)
        runner.start()
        queues = ", ".join(topology.queue_name(service, a) for a in settings.served_areas())
        log.info("worker ready", extra={"queues": queues})
        print(f"READY {service} worker consuming {queues}", flush=True)
        waiting = eventlet.spawn(runner.wait)
        while True:
            try:
                waiting.wait()
            except KeyboardInterrupt:
                log.info("worker stopping")
                try:
                    runner.stop()
                except KeyboardInterrupt:
                    runner.kill()
            else:
                break
    return 0


if __name__ == "__main__":  # pragma: no cover - run through a service's entrypoints.worker
    sys.exit("run python -m <service>.entrypoints.worker")
