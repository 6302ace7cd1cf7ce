"""Settings of the routing service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from motcua.settings import PlatformSettings


class RoutingSettings(PlatformSettings):
    service: ClassVar[str] = "routing"

    sla_sweep_interval_s: float = Field(
        30.0, description="How often the worker's SLA sweep looks for steps and dossiers due soon or overdue, "
        "supplement deadlines passed and apologies (form 04) to issue, in the areas it serves.")
    sla_sweep_lease_s: float = Field(
        120.0, description="How long a sweep holds a dossier it claimed; a replica that dies meanwhile leaves "
        "it to be swept again after this.")
    dossier_gauges_interval_s: float = Field(
        60.0, description="How often the worker counts the dossiers of its areas at work by status and the "
        "overdue ones (the gauges motcua_dossiers and motcua_dossiers_overdue), from the store's indexes.")
    sla_due_soon_hours: Decimal = Field(
        Decimal(8), description="Working hours before a deadline from which a step or a dossier is due soon "
        "(dossier.due_soon; ListTasks' due-soon filter).")
