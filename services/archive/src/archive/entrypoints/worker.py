"""Archive's worker process (nameko): consumes archive.<area> (a dossier's life events and
dossier.returned), runs the fixity sweep and the ledger head's timestamping, relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from eventlet import tpool  # noqa: E402

from archive.application.archiving import ArchiveDossier, RecordLifeEvent  # noqa: E402
from archive.config import ArchiveSettings  # noqa: E402
from archive.entrypoints import bootstrap  # noqa: E402
from archive.entrypoints.messages import INBOUND  # noqa: E402
from motcua.messagebus import MessageBus  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402


def make_runtime(settings: ArchiveSettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    copies = bootstrap.vaults(settings)
    for vault in copies:
        vault.ensure()
    uows = infra.units_of_work()
    lives = bootstrap.lives(uows)
    bus = MessageBus({ArchiveDossier: bootstrap.archivist(settings, uows, infra.objects, copies, tpool.execute),
                      RecordLifeEvent: lives.record})
    timers = bootstrap.timers(settings, uows, copies, tpool.execute)
    return WorkerRuntime(infra, "archive", INBOUND.dispatch(bus), list(bootstrap.SCHEMAS), timers=timers)


if __name__ == "__main__":
    sys.exit(main("archive", ArchiveSettings, make_runtime, timers={
        "fixity_sweep": lambda settings: settings.archive_fixity_sweep_s,
        "stamp_ledger": lambda settings: settings.archive_stamp_interval_s}))
