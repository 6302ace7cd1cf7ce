"""The nameko edge shared by every service's worker process.

A worker is a nameko service built at start-up from the settings: one consumer entrypoint per
area queue (``<service>.<area>``, for every area it serves) and a timer that runs the outbox relay. Its handlers
hand each delivery to a :class:`~motcua.runtime.WorkerRuntime`, so nameko stays at the edge and
can be replaced. Call :func:`main` from a module that has monkey-patched eventlet first.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from functools import partial

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Connection
from nameko import config as nameko_config
from nameko.amqp.consume import Consumer as ConsumerCore
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider, Extension
from nameko.messaging import Consumer
from nameko.runners import ServiceRunner
from nameko.timer import timer

from motcua import logs, metrics
from motcua.messaging import receiving, topology
from motcua.messaging.consuming import Delivery, RedeliveryGuard
from motcua.messaging.publisher import Publisher
from motcua.runtime import WorkerRuntime
from motcua.settings import PlatformSettings

log = logging.getLogger(__name__)

# What acknowledging or requeueing a message raises when the broker went away meanwhile (nameko
# catches py-amqp's ConnectionError only, not the socket's own errors, and a handler's exception
# kills the whole container). The broker requeues every unacknowledged message of a lost
# connection by itself; the consumer reconnects and the message comes again (consumers are
# idempotent).
CONNECTION_LOST = (OSError, AmqpConnectionError)

SETTINGS_KEY = "MOTCUA_SETTINGS"


class _RawConsumerCore(ConsumerCore):
    """nameko's AMQP consumer, handing on each message as it came: kombu deserialises nothing
    (``on_message`` instead of callbacks, so no content-type lookup, no ``accept`` list whose
    failures kombu logs in full and acknowledges — drops), and py-amqp leaves the body as bytes
    (``auto_decode`` off: it used to turn bodies with a ``content_encoding`` into text)."""

    def get_consumers(self, consumer_cls, channel):
        channel.auto_decode = False
        consumer = consumer_cls(queues=self.queues, on_message=self._on_raw_message, **self.consumer_options)
        consumer.qos(prefetch_count=self.prefetch_count)
        return [consumer]

    def _on_raw_message(self, message):
        self.on_message(message.body, message)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        for queue in self.queues:
            metrics.HEALTH.up(queue.name)

    @contextlib.contextmanager
    def extra_context(self, connection, channel):
        # kombu's consume loop runs inside this: leaving it, by a lost connection or a stop, means
        # the queue has no consumer here until the next on_consume_ready (worker's /readyz, /livez).
        try:
            yield
        finally:
            for queue in self.queues:
                metrics.HEALTH.down(queue.name)

    def on_decode_error(self, message, exc):
        # kombu could not even build the message (it carries a "compression" header kombu could
        # not undo): hand it on as it is; motcua parks it (kombu's default logs it and acks it).
        self.on_message(message.body, message)


class _Guard(Extension):
    """The consumer's RedeliveryGuard, with a publisher of its own (made when first needed),
    closed only once the container's workers are done."""

    def setup(self):
        self.guard = RedeliveryGuard(lambda: Publisher(nameko_config[AMQP_URI_CONFIG_KEY]))

    def stop(self):
        self.guard.close()


class DeliveryConsumer(Consumer):
    """nameko's consumer, handing the handler the whole message as it came (body as raw bytes,
    headers included), acknowledging it when the handler returns. The handler raises only when
    the message could be neither processed nor set aside; the consumer's RedeliveryGuard then
    parks it if it had failed before, or it is requeued after a pause that grows with each
    failure — never at once, never in a tight loop."""

    consumer_cls = _RawConsumerCore
    redelivery = _Guard()

    def __init__(self, queue, **options):
        super().__init__(queue, requeue_on_error=True, **options)

    def setup(self):
        receiving.tolerate_undecodable_properties()
        super().setup()

    def handle_message(self, body, message):
        delivery = _delivery(message, self.queue.name)
        handle_result = partial(self.handle_result, message, delivery)

        def spawn_worker():
            try:
                self.container.spawn_worker(self, (delivery,), {}, handle_result=handle_result)
            except ContainerBeingKilled:
                self._settle(self.consumer.requeue_message, message)

        self.container.spawn_managed_thread(spawn_worker)

    def handle_result(self, message, delivery, worker_ctx, result=None, exc_info=None):
        guard = self.redelivery.guard
        if exc_info is None:
            guard.succeeded(delivery)
            self._settle(self.consumer.ack_message, message)
            return result, exc_info
        try:
            delay = guard.failed(delivery, exc_info[1])
        except Exception:  # noqa: BLE001 - the guard must not kill the container: wait long
            log.exception("redelivery guard failed", extra={"queue": self.queue.name})
            delay = guard.max_delay_s
        if delay is None:  # parked by the guard
            self._settle(self.consumer.ack_message, message)
        else:
            def requeue_after_pause():
                eventlet.sleep(delay)
                self._settle(self.consumer.requeue_message, message)

            self.container.spawn_managed_thread(requeue_after_pause)
        return result, exc_info

    def _settle(self, settle: Callable[[object], None], message) -> None:
        """Ack or requeue ``message``; if the connection is lost meanwhile, the broker requeues the
        message itself, so that is only logged (it must not kill the container)."""
        try:
            settle(message)
        except CONNECTION_LOST as error:
            log.warning("connection lost before the message was settled; the broker delivers it again",
                        extra={"queue": self.queue.name, "error": repr(error)})


def _delivery(message, queue: str) -> Delivery:
    """The Delivery of a kombu message; reads nothing that could raise."""
    body = message.body
    if not isinstance(body, bytes):
        body = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body or b"")
    headers = message.headers if isinstance(message.headers, dict) else {}
    info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
    routing_key = info.get("routing_key")
    return Delivery(body=body, headers=headers, content_type=message.content_type, queue=queue,
                    routing_key=routing_key if isinstance(routing_key, str) else "",
                    redelivered=bool(info.get("redelivered")))


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

        metrics.HEALTH.expect(queue.name)
        consume.__name__ = f"consume_{area.replace('-', '_')}"
        attrs[consume.__name__] = DeliveryConsumer.decorator(
            queue, prefetch_count=settings.prefetch_count)(consume)

    def relay_outbox(self) -> None:
        metrics.timed_job("outbox_relay", self.runtime.relay)

    attrs["relay_outbox"] = timer(interval=settings.outbox_relay_interval_s)(relay_outbox)
    for name, interval in (timers or {}).items():
        def tick(self, _name: str = name) -> None:
            try:
                metrics.timed_job(_name, lambda: self.runtime.tick(_name))
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
    metrics.serve(settings, f"{service}-worker")
    topology.use_queue_type(settings.queue_type)
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
