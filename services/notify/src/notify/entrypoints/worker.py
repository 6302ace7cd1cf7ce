"""Notify's worker process (nameko): consumes notify.<area> (bound to every public event of the
area, and notify's own notify.deliver work), delivers notifications on their channels, tries the
due ones on a timer and relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402
from notify.config import NotifySettings  # noqa: E402
from notify.entrypoints.bootstrap import OUTBOX_SCHEMAS, bus, notifier, webhooks  # noqa: E402
from notify.entrypoints.messages import INBOUND  # noqa: E402


def make_runtime(settings: NotifySettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    uows = infra.units_of_work()
    notify, hooks = notifier(settings, uows, objects=infra.objects), webhooks(settings, uows)
    return WorkerRuntime(infra, "notify", INBOUND.dispatch(bus(notify, hooks)), OUTBOX_SCHEMAS,
                         timers={"deliver_due": notify.deliver_due, "deliver_webhooks": hooks.deliver_due})


if __name__ == "__main__":
    sys.exit(main("notify", NotifySettings, make_runtime,
                  timers={"deliver_due": lambda s: s.notify_due_interval_s,
                          "deliver_webhooks": lambda s: s.notify_due_interval_s}))
