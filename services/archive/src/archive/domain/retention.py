"""Retention classes (Decree 30/2020 and the records retention schedules): how long a dossier is
kept — a number of years or ``permanent`` — and the date its package stays locked until."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

PERMANENT = "permanent"
_YEARS = re.compile(r"^([1-9][0-9]{0,2})(y| years?)?$")


@dataclass(frozen=True)
class Retention:
    """``years`` is None for permanent."""

    years: int | None

    @classmethod
    def parse(cls, text: str) -> Retention:
        """``permanent``, ``10``, ``10y`` or ``10 years``; ValueError for anything else."""
        value = (text or "").strip().lower()
        if value in (PERMANENT, "vĩnh viễn", "vinh-vien"):
            return cls(None)
        match = _YEARS.match(value)
        if match is None:
            raise ValueError(f"retention must be 'permanent' or a number of years, not {text[:40]!r}")
        return cls(int(match.group(1)))

    @property
    def permanent(self) -> bool:
        return self.years is None

    def __str__(self) -> str:
        return PERMANENT if self.years is None else f"{self.years} years"

    def label(self) -> str:
        """The value written into the package (``permanent`` or ``<n>``)."""
        return PERMANENT if self.years is None else str(self.years)

    def retain_until(self, start: datetime, permanent_lock_years: int) -> datetime:
        """The end of the lock: ``start`` plus the years (a permanent package is locked for
        ``permanent_lock_years``, extended by an operator before it ends — S3 has no "forever").
        Whole seconds, UTC; 29 February moves to 28 February."""
        years = permanent_lock_years if self.years is None else self.years
        start = start.astimezone(UTC).replace(microsecond=0)
        try:
            return start.replace(year=start.year + years)
        except ValueError:
            return start.replace(year=start.year + years, day=28)
