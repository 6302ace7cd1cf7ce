"""Notify's worker process (nameko): consumes notify.<area> (bound to every public event of the
area, and notify's own notify.deliver work), delivers notifications on their channels, tries the
due ones on a timer and relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from motcua.messagebus import MessageBus  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402
from notify.adapters.records import NotificationRecord  # noqa: E402
from notify.application.notifying import DeliverNotification, NotifyApplicant, RememberApplicant  # noqa: E402
from notify.config import NotifySettings  # noqa: E402
from notify.entrypoints.bootstrap import notifier  # noqa: E402
from notify.entrypoints.messages import INBOUND  # noqa: E402


def make_runtime(settings: NotifySettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    notify = notifier(settings, infra.units_of_work())
    bus = MessageBus({RememberApplicant: notify.remember, NotifyApplicant: notify.notify,
                      DeliverNotification: notify.deliver})
    return WorkerRuntime(infra, "notify", INBOUND.dispatch(bus), [NotificationRecord],
                         timers={"deliver_due": notify.deliver_due})


if __name__ == "__main__":
    sys.exit(main("notify", NotifySettings, make_runtime,
                  timers={"deliver_due": lambda s: s.notify_due_interval_s}))
