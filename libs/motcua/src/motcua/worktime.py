"""Working-time calendar: when a duration counted in working hours (or calendar days) ends.

Intake uses it for the appointment date on the receipt, routing for step deadlines, SLA sweeps and
the pause of a supplement request. Pure Python (``holidays`` and ``zoneinfo`` only); DOMAIN.md,
"Time rules", is the specification.

Model. Working time is the union of the unit's sessions (default 07:00–11:30 and 13:30–17:00) on
working days. A working day is a configured weekday that is neither a holiday (the ``holidays``
package's Vietnam calendar, Labour Code 2019 Art. 112) nor an extra day off, or any extra working
day (a make-up Saturday wins over the weekend and over a holiday). Sessions are half-open for the
*start* of a clock and closed for a *due* time:

* ``clock_start``: an instant inside ``[session start, session end)`` stands; any other instant
  (before 07:00, lunch, from 17:00 on, a day off) moves to the next session start.
* ``add_working_hours``: the earliest instant by which N working hours have elapsed. So a due
  date exactly at a session end stays there (Friday 16:00 + 1 h = Friday 17:00, not Monday
  07:00): the work can be done that day, and the due *date* (by which lateness is judged) is not
  pushed over a weekend for nothing. Zero hours gives the clock start.
* ``add_calendar_days``: counted from the clock-start date (so a dossier received after hours
  counts from the next working day, as working-hour procedures do); the last day, moved to the
  next working day when it is a day off, ends at the end of its last session (17:00).

Consequences the tests check: a due time is on a working day within its sessions (ends
included); ``add(add(s, a), b) == add(s, a + b)`` for a >= 0 and b > 0 (b = 0 breaks it only
when ``add(s, a)`` is a session end, which ``add(., 0)`` moves to the next session start);
due times are monotonic in the start; ``working_hours_between(s, add(s, h)) == h``. Durations are
exact to the microsecond (Decimal arithmetic, floats read through their shortest repr).

All inputs must be timezone-aware, in any zone; all outputs are in the calendar's zone
(Asia/Ho_Chi_Minh, which has had no daylight saving since 1975, so wall-clock arithmetic is safe).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import yaml

from motcua.errors import InvalidArgument

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HOURS_PER_WORKING_DAY = Decimal(8)  # DOMAIN.md: one working day = 8 hours, whatever the sessions
_ONE_DAY = dt.timedelta(days=1)
_US_PER_HOUR = 3_600_000_000
# A calendar without a single working day in a year is misconfigured; say so instead of looping.
_MAX_IDLE_DAYS = 366

Hours = Decimal | float | int


@dataclass(frozen=True)
class WorkingHours:
    """A unit's office hours: ordered, non-overlapping sessions on the given weekdays (Monday = 0)."""

    sessions: tuple[tuple[dt.time, dt.time], ...] = (
        (dt.time(7, 0), dt.time(11, 30)),
        (dt.time(13, 30), dt.time(17, 0)),
    )
    weekdays: frozenset[int] = frozenset(range(5))

    def __post_init__(self) -> None:
        object.__setattr__(self, "sessions", tuple((s, e) for s, e in self.sessions))
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        bounds = [t for session in self.sessions for t in session]
        if not self.sessions or bounds != sorted(bounds) or any(s >= e for s, e in self.sessions):
            raise InvalidArgument("sessions", "need one or more, each start before its end, in order, not overlapping")
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise InvalidArgument("weekdays", "need one or more of 0 (Monday) to 6 (Sunday)")


class Calendar:
    """Working time of one unit: its hours, the holidays and the year's swapped days."""

    def __init__(
        self,
        hours: WorkingHours | None = None,
        holidays_by_date: Container[dt.date] = frozenset(),
        extra_working_days: Iterable[dt.date] = (),
        extra_days_off: Iterable[dt.date] = (),
        tz: dt.tzinfo | str = VN_TZ,
    ):
        self.hours = hours or WorkingHours()
        self.holidays = holidays_by_date
        self.extra_working_days = frozenset(extra_working_days)
        self.extra_days_off = frozenset(extra_days_off)
        if clash := self.extra_working_days & self.extra_days_off:
            raise InvalidArgument("extra_days_off", f"{min(clash)} is also listed as an extra working day")
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    # -- days -----------------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        if isinstance(day, dt.datetime):
            day = self._local(day, "day").date()
        if day in self.extra_working_days:
            return True
        return day.weekday() in self.hours.weekdays and day not in self.extra_days_off and day not in self.holidays

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        if isinstance(day, dt.datetime):
            day = self._local(day, "day").date()
        for _ in range(_MAX_IDLE_DAYS):
            day += _ONE_DAY
            if self.is_working_day(day):
                return day
        raise InvalidArgument("calendar", f"no working day within {_MAX_IDLE_DAYS} days")

    # -- instants -------------------------------------------------------------------------------

    def clock_start(self, received_at: dt.datetime) -> dt.datetime:
        """When the clock of a dossier received at ``received_at`` starts (see the module doc)."""
        return next(self._sessions_from(self._local(received_at, "received_at")))[0]

    def add_working_hours(self, start: dt.datetime, hours: Hours | dt.timedelta) -> dt.datetime:
        left = _duration(hours, "hours")
        at = self.clock_start(start)
        if not left:
            return at
        for begin, end in self._sessions_from(at):
            if left <= end - begin:  # `<=`: a due exactly at a session end stays at that end
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable: _sessions_from never ends")

    def add_working_days(self, start: dt.datetime, days: Hours) -> dt.datetime:
        return self.add_working_hours(start, _decimal(days, "days") * HOURS_PER_WORKING_DAY)

    def add_calendar_days(self, start: dt.datetime, days: int) -> dt.datetime:
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise InvalidArgument("days", "must be a whole number of calendar days, 0 or more")
        day = self.clock_start(start).date() + dt.timedelta(days=days)
        if not self.is_working_day(day):
            day = self.next_working_day(day)
        return self._at(day, self.hours.sessions[-1][1])

    def move_calendar_due(self, due: dt.datetime, days: int) -> dt.datetime:
        """A calendar-day due date moved ``days`` later (a paused clock), again at the end of a
        working day: like the due date itself, it never falls on a day off."""
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise InvalidArgument("days", "must be a whole number of calendar days, 0 or more")
        day = self._local(due, "due").date() + dt.timedelta(days=days)
        if not self.is_working_day(day):
            day = self.next_working_day(day)
        return self._at(day, self.hours.sessions[-1][1])

    def working_hours_between(self, a: dt.datetime, b: dt.datetime) -> Decimal:
        """Working hours from ``a`` to ``b``; negative when ``b`` is before ``a``.

        Exact when the working time is a multiple of 36 s (0.01 h), e.g. the half hours of a
        duration; otherwise rounded to 28 significant digits, which ``add_working_hours`` turns
        back into the same microsecond. ``working_time_between`` is the exact timedelta.
        """
        return Decimal(self.working_time_between(a, b) // dt.timedelta(microseconds=1)) / _US_PER_HOUR

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        a, b = self._local(a, "a"), self._local(b, "b")
        if b < a:
            return -self.working_time_between(b, a)
        total = dt.timedelta()
        for begin, end in self._sessions_from(a):
            if begin >= b:
                break
            total += min(end, b) - begin
        return total

    # -- internals ------------------------------------------------------------------------------

    def _sessions_from(self, t: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The working sessions that end after ``t``, in order, the first one clipped to start at ``t``."""
        day, idle = t.date(), 0
        while idle < _MAX_IDLE_DAYS:
            if self.is_working_day(day):
                idle = 0
                for s, e in self.hours.sessions:
                    begin, end = self._at(day, s), self._at(day, e)
                    if end > t:
                        yield max(begin, t), end
            else:
                idle += 1
            day += _ONE_DAY
        raise InvalidArgument("calendar", f"no working day within {_MAX_IDLE_DAYS} days")

    def _at(self, day: dt.date, clock: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, clock, tzinfo=self.tz)

    def _local(self, t: dt.datetime, field: str) -> dt.datetime:
        # A naive datetime is ambiguous (server clock? UTC? local?); refuse it rather than guess.
        if not isinstance(t, dt.datetime) or t.utcoffset() is None:
            raise InvalidArgument(field, "must be a timezone-aware datetime")
        return t.astimezone(self.tz)


def _decimal(value: Hours, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | float | int):
        raise InvalidArgument(field, "must be a number")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - Decimal(str(float)) always parses
        raise InvalidArgument(field, "must be a number") from exc
    if not number.is_finite() or number < 0:
        raise InvalidArgument(field, "must be a finite number, 0 or more")
    return number


def _duration(hours: Hours | dt.timedelta, field: str) -> dt.timedelta:
    if isinstance(hours, dt.timedelta):  # e.g. a pause measured by working_time_between
        if hours < dt.timedelta():
            raise InvalidArgument(field, "must be 0 or more")
        return hours
    # Rounded to the microsecond, timedelta's resolution; half-hour multiples are exact.
    return dt.timedelta(microseconds=int((_decimal(hours, field) * _US_PER_HOUR).to_integral_value()))


# -- the Vietnam calendar -----------------------------------------------------------------------


def load_overrides(path: str | Path | None = None) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """``(extra working days, extra days off)`` from the per-year YAML file (default: the shipped one)."""
    if path is None:
        text = resources.files("motcua").joinpath("worktime_overrides.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    working: set[dt.date] = set()
    off: set[dt.date] = set()
    for year, entry in (yaml.safe_load(text) or {}).items():
        unknown = set(entry or {}) - {"working_days", "days_off"}
        if unknown:
            raise InvalidArgument(f"{path or 'worktime_overrides.yaml'}:{year}", f"unknown keys {sorted(unknown)}")
        for item in (entry or {}).get("working_days") or ():
            working.update(_dates(item))
        for item in (entry or {}).get("days_off") or ():
            off.update(_dates(item))
    return frozenset(working), frozenset(off)


def _dates(item: dt.date | str) -> list[dt.date]:
    """A YAML entry: a date, or an inclusive range ``YYYY-MM-DD..YYYY-MM-DD``."""
    if isinstance(item, dt.date):
        return [item]
    first, _, last = str(item).partition("..")
    lo = dt.date.fromisoformat(first.strip())
    hi = dt.date.fromisoformat(last.strip()) if last else lo
    return [lo + dt.timedelta(days=n) for n in range((hi - lo).days + 1)]


def vietnam_calendar(hours: WorkingHours | None = None, overrides_path: str | Path | None = None) -> Calendar:
    """A unit's calendar: Vietnam's public holidays (any year, computed on demand) plus the overrides."""
    working, off = load_overrides(overrides_path)
    return Calendar(hours, holidays.country_holidays("VN"), working, off, VN_TZ)
