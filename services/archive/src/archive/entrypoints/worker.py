"""Archive's worker process (nameko): consumes archive.<area> (bound to dossier.returned)."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from archive.adapters.records import PackageRecord  # noqa: E402
from archive.application.archiving import ArchiveDossier, Archivist  # noqa: E402
from archive.config import ArchiveSettings  # noqa: E402
from archive.entrypoints.messages import INBOUND  # noqa: E402
from motcua.messagebus import MessageBus  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402


def make_runtime(settings: ArchiveSettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    bus = MessageBus({ArchiveDossier: Archivist(infra.units_of_work(), infra.objects, settings.retention)})
    return WorkerRuntime(infra, "archive", INBOUND.dispatch(bus), [PackageRecord])


if __name__ == "__main__":
    sys.exit(main("archive", ArchiveSettings, make_runtime))
