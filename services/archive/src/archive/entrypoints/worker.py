"""Archive's worker process (nameko): consumes archive.<area> (bound to dossier.returned)."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from archive.adapters.records import PackageRecord  # noqa: E402
from archive.application.archiving import Archivist  # noqa: E402
from archive.config import ArchiveSettings  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402


def make_runtime(settings: ArchiveSettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    archivist = Archivist(infra.store, infra.objects, infra.outbox, settings.retention)
    return WorkerRuntime(infra, "archive", archivist.dispatch, [PackageRecord])


if __name__ == "__main__":
    sys.exit(main("archive", ArchiveSettings, make_runtime))
