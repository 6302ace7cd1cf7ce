"""The SLA sweep: what the worker does on its timer, for each area it serves.

Instances that need a look carry ``next_check_at`` (computed by :func:`routing.domain.sla.next_check_at`
on every write, indexed with the area), so a sweep reads only those due now, never the whole
collection. Each one is first **claimed** (find-and-modify: its ``next_check_at`` moves to a lease
in the future, so another replica's sweep, or this one's next round, does not take it), then
looked at and written back with one version-checked write that recomputes ``next_check_at``:

* the supplement deadline passed → the procedure's rule (stop: status 8; or keep waiting);
* the dossier will miss its appointment → form 04 (apology with a new appointment computed by the
  calendar, no later than the appointment it replaces) rendered, stored and published;
* the active step or the appointment is due soon or overdue → ``dossier.due_soon`` /
  ``dossier.overdue``, once per deadline.

A replica killed between the claim and the write leaves nothing half-done: the lease runs out and
the instance is swept again. An official who writes in between wins; the sweep's write is then
stale and dropped, and the official's write has recomputed ``next_check_at`` anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from motcua.logs import bind
from motcua.store.port import VersionConflict
from routing.application.repository import Instances, StoredInstance
from routing.domain.actions import CLOCK, Apologize, SupplementExpired
from routing.domain.instance import WorkflowInstance
from routing.domain.process import SupplementExpiry
from routing.domain.sla import (
    alerts_due,
    apology_decision,
    apology_reason,
    supplement_expired_reason,
    supplement_expiry_due,
)

log = logging.getLogger(__name__)

# Renders form 04 for (instance, new appointment, reason, now), sealed by the receiving unit, and
# stores it: its document reference (sealing failing raises: the dossier is looked at again later).
ApologyForm = Callable[[WorkflowInstance, dt.datetime, str, dt.datetime], dict[str, Any]]
# Renders the stop notice for (instance, reason, now) and stores it: its document reference.
StopNotice = Callable[[WorkflowInstance, str, dt.datetime], dict[str, Any]]


@dataclass
class SweepReport:
    claimed: int = 0
    written: int = 0
    stale: int = 0  # an official wrote first
    failed: int = 0  # could not be looked at now (e.g. object storage down): swept again after the lease
    facts: dict[str, int] = field(default_factory=dict)  # fact kind → how many the sweep raised

    def add(self, other: SweepReport) -> None:
        self.claimed += other.claimed
        self.written += other.written
        self.stale += other.stale
        self.failed += other.failed
        for kind, n in other.facts.items():
            self.facts[kind] = self.facts.get(kind, 0) + n


class SlaSweep:
    def __init__(self, instances: Instances, apology_form: ApologyForm, lease: dt.timedelta,
                 batch: int = 500, stop_notice: StopNotice | None = None):
        self._instances = instances
        self._apology_form = apology_form
        self._stop_notice = stop_notice
        self._lease = lease
        self._batch = batch

    def sweep(self, areas: Iterable[str]) -> SweepReport:
        """One round over the areas: at most ``batch`` instances each."""
        report = SweepReport()
        for area in areas:
            report.add(self.sweep_area(area))
        if report.claimed:
            log.info("SLA sweep", extra={"claimed": report.claimed, "written": report.written,
                                         "stale": report.stale, "failed": report.failed, "facts": report.facts})
        return report

    def sweep_area(self, area: str) -> SweepReport:
        report = SweepReport()
        now = self._instances.clock()
        due = {"area": area, "next_check_at": {"$lte": now}}
        lease = {"next_check_at": now + self._lease}
        collection = self._instances.collection
        while report.claimed < self._batch:
            doc = collection.claim(due, lease, sort=[("next_check_at", 1)])
            if doc is None:
                break
            report.claimed += 1
            stored = self._instances.loaded(doc)
            with bind(dossier_code=stored.instance.code, area=area):
                try:
                    self._look_at(stored, report)
                except Exception:  # noqa: BLE001 - one dossier's trouble must not stop the others'
                    report.failed += 1
                    log.warning("SLA sweep could not look at a dossier; it is looked at again when its "
                                "lease ends", exc_info=True)
        return report

    def _look_at(self, stored: StoredInstance, report: SweepReport) -> None:
        instance = stored.instance
        now = self._instances.clock()
        if (rule := supplement_expiry_due(instance, now)) is not None:
            notice = None
            if rule is SupplementExpiry.STOP and self._stop_notice is not None:
                notice = self._stop_notice(instance, supplement_expired_reason(instance), now)
            instance.apply(SupplementExpired(notice=notice), by=CLOCK, now=now,
                           request_id=f"sweep:supplement-expired:{len(instance.supplements)}")
        decision = apology_decision(instance, now)
        if decision.needed:
            assert decision.new_due_at is not None
            reason = apology_reason(instance)
            form = self._apology_form(instance, decision.new_due_at, reason, now)
            instance.apply(Apologize(new_due_at=decision.new_due_at, reason=reason, form=form), by=CLOCK, now=now,
                           request_id=f"sweep:apology:{len(instance.apologies) + 1}")
        for alert in alerts_due(instance, now, self._instances.soon_hours):
            instance.raise_alert(alert.kind, alert.scope, alert.deadline, now)
        try:
            # Written even when nothing happened: the write recomputes next_check_at (the lease ends).
            self._instances.save(stored, now)
        except VersionConflict:
            report.stale += 1
            return
        report.written += 1
        for fact in instance.facts:
            report.facts[fact.kind.value] = report.facts.get(fact.kind.value, 0) + 1
