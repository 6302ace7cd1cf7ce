"""Routing's worker process (nameko): consumes routing.<district> and relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402
from routing.adapters.records import WorkflowRecord  # noqa: E402
from routing.application.workflows import Workflows  # noqa: E402
from routing.config import RoutingSettings  # noqa: E402


def make_runtime(settings: RoutingSettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    workflows = Workflows(infra.store, infra.objects, infra.outbox)
    return WorkerRuntime(infra, "routing", workflows.dispatch, [WorkflowRecord])


if __name__ == "__main__":
    sys.exit(main("routing", RoutingSettings, make_runtime))
