"""The process definition routing receives with a dossier: the procedure version's steps resolved
to the units that act for this dossier, and the duration for its channel.

Intake owns the catalog and routing must not read it, so the definition travels inside the
``routing.route_dossier`` work message as plain JSON (the shape routing's
``ProcessDefinition.from_dict`` reads). A step names either a unit or a level; a level is resolved
along the receiving unit's chain (a commune's dossier decided at the district goes to that
commune's district). The units of that chain and the units the steps name are where a step marked
``forward`` may transfer the dossier (liên thông between levels).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from intake.domain.catalog import HOURS_PER_WORKING_DAY, Catalog, Level, Procedure, Step, TimeType, Unit
from motcua.errors import FailedPrecondition


def acting_unit(catalog: Catalog, step: Step, receiving: Unit) -> Unit:
    """The unit that acts at ``step`` of a dossier received by ``receiving``."""
    if step.unit:
        return catalog.unit(step.unit)
    for unit in [receiving, *catalog.ancestors(receiving.slug)]:
        if unit.level == Level(step.level):
            return unit
    raise FailedPrecondition(f"no unit of level {step.level} above {receiving.slug} for step {step.role}")


def process_definition(catalog: Catalog, procedure: Procedure, receiving: Unit, online: bool) -> dict[str, Any]:
    steps = []
    for step in procedure.process:
        unit = acting_unit(catalog, step, receiving)
        steps.append({"role": str(step.role), "unit": unit.slug, "unit_id": unit.unit_id, "level": str(unit.level),
                      "share": str(Decimal(str(step.share))), "name": step.name, "forward": step.forward})
    chain = [receiving, *catalog.ancestors(receiving.slug)]
    named = [catalog.unit(s["unit"]) for s in steps]
    targets = {u.slug: u for u in [*chain, *named]}
    days = procedure.duration.days(online)
    working = TimeType(procedure.time_type) is TimeType.WORKING_DAYS
    return {
        "steps": steps,
        "time_type": str(procedure.time_type),
        "duration_hours": str(Decimal(str(days)) * HOURS_PER_WORKING_DAY) if working else None,
        "duration_days": None if working else int(days),
        "supplement_policy": str(procedure.supplement_policy),
        "transfer_targets": [{"unit": u.slug, "unit_id": u.unit_id, "level": str(u.level)} for u in targets.values()],
    }
