"""Routing's worker process (nameko): consumes routing.<area> (intake's route_dossier, signing's
replies, form 05 of a returned dossier, intake's supplement and withdrawal events), runs the SLA
sweep of its areas, counts their dossiers at work for the operators' gauges and relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402
from datetime import timedelta  # noqa: E402

from eventlet import tpool  # noqa: E402
from fpdf import FPDF  # noqa: E402

from motcua import fonts  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.sealing import SealingClient  # noqa: E402
from motcua.worker import main  # noqa: E402
from motcua.worktime import vietnam_calendar  # noqa: E402
from routing.adapters.drafts import ApologyForms, ControlSlips, StopNotices  # noqa: E402
from routing.adapters.gauges import count_at_work  # noqa: E402
from routing.adapters.instances import INSTANCES, InstanceRecord  # noqa: E402
from routing.application.repository import Instances  # noqa: E402
from routing.application.statistics import StatisticsQuery  # noqa: E402
from routing.application.sweeps import SlaSweep  # noqa: E402
from routing.config import RoutingSettings  # noqa: E402
from routing.entrypoints.messages import dispatcher  # noqa: E402


def build_instances(settings: RoutingSettings, infra: Infrastructure) -> Instances:
    return Instances(infra.units_of_work(), vietnam_calendar(), settings.clock(), settings.sla_due_soon_hours,
                     records=INSTANCES)


def make_runtime(settings: RoutingSettings) -> WorkerRuntime:
    fonts.warm_up(FPDF)  # before consuming: no sweep's form 04 or stop notice pays the parse of the faces
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    instances = build_instances(settings, infra)
    # forms 04, 05 and the stop notice: rendered in tpool's native threads (off the hub), sealed through
    # the signing api on the hub (grpcio from tpool's threads stalled the worker's timers)
    sealer = SealingClient.from_settings(settings)
    sweep = SlaSweep(instances, ApologyForms(infra.objects, sealer, offload=tpool.execute),
                     lease=timedelta(seconds=settings.sla_sweep_lease_s),
                     stop_notice=StopNotices(infra.objects, sealer, offload=tpool.execute))
    statistics = StatisticsQuery(instances.collection, settings.clock())
    control_slips = ControlSlips(infra.objects, sealer, offload=tpool.execute)
    return WorkerRuntime(infra, "routing", dispatcher(instances, control_slips), [InstanceRecord],
                         timers={"sla_sweep": lambda: sweep.sweep(settings.served_areas()),
                                 "dossier_gauges": lambda: count_at_work(statistics, settings.served_areas())})


if __name__ == "__main__":
    sys.exit(main("routing", RoutingSettings, make_runtime,
                  timers={"sla_sweep": lambda settings: settings.sla_sweep_interval_s,
                          "dossier_gauges": lambda settings: settings.dossier_gauges_interval_s}))
