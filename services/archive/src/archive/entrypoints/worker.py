"""Archive's worker process (nameko): consumes archive.<area> (a dossier's life events and
dossier.returned), runs the fixity sweep and the ledger head's timestamping, relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from eventlet import tpool  # noqa: E402
from eventlet.semaphore import Semaphore  # noqa: E402

from archive.adapters.bags import remove_abandoned_bags  # noqa: E402
from archive.application.archiving import ArchiveDossier, RecordLifeEvent  # noqa: E402
from archive.config import ArchiveSettings  # noqa: E402
from archive.entrypoints import bootstrap  # noqa: E402
from archive.entrypoints.messages import INBOUND  # noqa: E402
from motcua.messagebus import MessageBus  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402


def serialized_offload() -> object:
    """``tpool.execute`` one call at a time: the S3 clients' connection pools use (monkey-patched)
    green locks, which a real thread must never wait on (greenlet.error "Cannot switch to a
    different thread" when two tpool threads contend for one pool). The hub's greenlets queue on
    a green semaphore instead; a package is built and stored in one turn, off the hub."""
    turn = Semaphore(1)

    def offload(function, *args):
        with turn:
            return tpool.execute(function, *args)
    return offload


def make_runtime(settings: ArchiveSettings) -> WorkerRuntime:
    remove_abandoned_bags()  # what a predecessor killed mid-build left in this pod's /tmp
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    copies = bootstrap.vaults(settings)
    for vault in copies:
        vault.ensure()
    uows = infra.units_of_work()
    offload = serialized_offload()
    archivist = bootstrap.archivist(settings, uows, infra.objects, copies, offload)
    lives = bootstrap.lives(uows, archivist)  # a form a return waits for archives it when it arrives
    bus = MessageBus({ArchiveDossier: archivist, RecordLifeEvent: lives.record})
    timers = bootstrap.timers(settings, uows, copies, offload)
    return WorkerRuntime(infra, "archive", INBOUND.dispatch(bus), list(bootstrap.SCHEMAS), timers=timers)


if __name__ == "__main__":
    sys.exit(main("archive", ArchiveSettings, make_runtime, timers={
        "fixity_sweep": lambda settings: settings.archive_fixity_sweep_s,
        "stamp_ledger": lambda settings: settings.archive_stamp_interval_s}))
