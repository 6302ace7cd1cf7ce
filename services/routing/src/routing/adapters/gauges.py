"""The operators' gauges of routing's areas (``motcua.metrics``): dossiers at work by status and
the overdue ones, counted from the store's indexes (:meth:`StatisticsQuery.at_work`) on the
worker's ``dossier_gauges`` timer."""

from __future__ import annotations

from collections.abc import Iterable

from motcua import metrics
from routing.application.statistics import StatisticsQuery


def count_at_work(statistics: StatisticsQuery, areas: Iterable[str]) -> None:
    """Sets the gauges of each area. Every replica of an area's worker sets the same values (the
    alerts take the max over pods)."""
    for area in areas:
        at_work = statistics.at_work(area)
        metrics.dossiers_at_work(area, {status.name.lower(): n for status, n in at_work.by_status.items()},
                                 at_work.overdue)
