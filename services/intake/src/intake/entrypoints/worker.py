"""Intake's worker process (nameko): issues forms 01 and 03 (intake.render_form), follows routing's
progress for public tracking (dossier.assigned, result_ready, returned), and relays the outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from eventlet import tpool  # noqa: E402
from fpdf import FPDF  # noqa: E402

from intake.adapters.catalog_file import load_catalog  # noqa: E402
from intake.adapters.forms import PDF_FORMS  # noqa: E402
from intake.adapters.records import RECORDS, DossierRecord  # noqa: E402
from intake.application.forms import Forms  # noqa: E402
from intake.application.progress import Progress  # noqa: E402
from intake.config import IntakeSettings  # noqa: E402
from intake.entrypoints.api import build_dossiers  # noqa: E402
from intake.entrypoints.messages import dispatcher  # noqa: E402
from motcua import fonts  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.sealing import SealingClient  # noqa: E402
from motcua.worker import main  # noqa: E402


def make_runtime(settings: IntakeSettings) -> WorkerRuntime:
    fonts.warm_up(FPDF)  # before consuming: no dossier's form 01 pays the process's parse of the faces
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    catalog = load_catalog(settings.catalog_file)
    # rendering in tpool's native threads (off the hub); sealing, a grpcio call, on the hub: from
    # tpool's threads it left the worker's timers (the outbox relay) waiting forever
    forms = Forms(infra.units_of_work(), infra.objects, catalog, settings.lookup_url, RECORDS, PDF_FORMS,
                  SealingClient.from_settings(settings), offload=tpool.execute, clock=settings.clock())
    progress = Progress(build_dossiers(settings, infra, catalog), forms)
    return WorkerRuntime(infra, "intake", dispatcher(progress), [DossierRecord])


if __name__ == "__main__":
    sys.exit(main("intake", IntakeSettings, make_runtime))
