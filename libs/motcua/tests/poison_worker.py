"""A real worker process for test_poison.py: motcua.worker.main (the nameko service that
build_service makes, DeliveryConsumer, the WorkerRuntime, MessageHandling, logs.configure), as a
service's ``entrypoints.worker`` runs it, with a handler of the test's own.

Every delivery that reaches the runtime, and every call of the handler, is appended to the file
named by ``POISON_SEEN_FILE`` (one JSON line: where, the message's ``test-tag`` header, the
broker's redelivered flag), so the test can count deliveries without trusting our own logs.
A message tagged ``explode`` makes the runtime raise before MessageHandling sees it (a bug, or
a store that cannot even be opened), which nameko answers by requeueing the message.
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from motcua.messaging.consuming import Delivery, PermanentFailure  # noqa: E402
from motcua.messaging.envelope import InvalidEnvelope, parse_work  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.settings import PlatformSettings  # noqa: E402
from motcua.worker import main  # noqa: E402

OK_TYPE = "routing.poison_test_ok"


class Settings(PlatformSettings):
    service = "routing"


def tag_of(delivery: Delivery) -> str:
    value = (delivery.headers or {}).get("test-tag")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def record(where: str, delivery: Delivery) -> None:
    line = json.dumps({"where": where, "tag": tag_of(delivery), "redelivered": delivery.redelivered})
    with open(os.environ["POISON_SEEN_FILE"], "a", encoding="utf-8") as seen:
        seen.write(line + "\n")


def dispatch(delivery: Delivery) -> None:
    """What a service's application layer does: parse, refuse what it cannot handle."""
    record("handler", delivery)
    try:
        work = parse_work(delivery.body, delivery.headers, delivery.queue)
    except InvalidEnvelope as exc:
        raise PermanentFailure(str(exc)) from exc
    if work.type != OK_TYPE:
        raise PermanentFailure(f"unknown work type {work.type!r}")


class CountingRuntime(WorkerRuntime):
    def handle(self, delivery: Delivery) -> str:
        record("runtime", delivery)
        if tag_of(delivery) == "explode":
            raise RuntimeError("the runtime failed before the message could be set aside")
        return super().handle(delivery)


def make_runtime(settings: PlatformSettings) -> WorkerRuntime:
    return CountingRuntime(Infrastructure.connect(settings), "routing", dispatch, [])


if __name__ == "__main__":
    sys.exit(main("routing", Settings, make_runtime))
