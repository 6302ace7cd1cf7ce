"""The process definition routing receives with each dossier, and the deadlines it implies.

Intake owns the catalog; routing must not import it. So intake resolves the procedure version's
process to concrete units and sends it inside the ``routing.route_dossier`` work message as plain
JSON (:meth:`ProcessDefinition.to_dict` is that shape). Routing keeps the definition with the
instance: a dossier is handled under the version it was received under, whatever the catalog
says later.

Step deadlines (DOMAIN.md, "each step has its own deadline; the step shares add up to the
statutory duration"): step *i* is due when the cumulative share of steps 0..i of the duration has
elapsed since reception, counted by the working-time calendar. Working-day procedures count
working hours, rounded to whole minutes; calendar-day procedures count whole days (rounded half
up), ending at the close of business of a working day. The last step is due exactly at the
dossier's appointment (``due_at``, computed by intake) and no step is ever due after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from motcua.errors import InvalidArgument
from motcua.worktime import Calendar
from routing.domain import fields

# The catalog writes shares as percentages or fractions; float sums of them miss 1 by a hair.
SHARE_TOLERANCE = Decimal("0.000001")


class Role(StrEnum):
    """Who acts at a step (the catalog's roles)."""

    RECEIVE = "receive"  # the one-stop desk registers the dossier and hands it on
    ASSIGN = "assign"  # a head of office assigns a specialist
    REVIEW = "review"  # a specialist examines (thẩm định)
    APPROVE = "approve"  # a leader approves
    SIGN = "sign"  # the competent person signs (personal certificate)
    SEAL = "seal"  # the clerk's organisation signature (seal), after the personal one
    RETURN = "return"  # the one-stop desk returns the result


# Steps done through the signing service, never by hand: an official approves, signing reports.
SIGNING_ROLES = frozenset({Role.SIGN, Role.SEAL})


class Level(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class TimeType(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


class SupplementPolicy(StrEnum):
    """What the applicant's time to supplement does to the due date (DOMAIN.md, Time rules)."""

    PAUSE = "pause"  # due date and open steps' deadlines move by the working time spent waiting
    RESTART = "restart"  # the full duration again from the resubmission


class SupplementExpiry(StrEnum):
    """What happens when the applicant lets the supplement deadline pass (practice: configurable)."""

    STOP = "stop"  # 5 → 8, processing stopped
    KEEP_WAITING = "keep_waiting"  # stay in 5; the desk decides by hand later


@dataclass(frozen=True)
class UnitRef:
    """A unit a dossier may be sent to: its slug (names queues), electronic id and level."""

    unit: str
    unit_id: str
    level: Level

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", Level(self.level))

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "unit_id": self.unit_id, "level": self.level.value}

    @classmethod
    def from_dict(cls, data: Any, field: str) -> UnitRef:
        data = fields.mapping(data, field)
        return cls(unit=fields.text(data, "unit", f"{field}.unit"),
                   unit_id=fields.text(data, "unit_id", f"{field}.unit_id"),
                   level=fields.choice(data.get("level"), Level, f"{field}.level"))


@dataclass(frozen=True)
class StepDefinition:
    """One step of the process, already resolved to the unit that acts."""

    role: Role
    unit: str  # slug
    unit_id: str
    level: Level
    share: Decimal  # fraction of the duration, 0 < share <= 1
    name: str = ""
    forward: bool = False  # may forward (same level) or transfer (other level) the dossier

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "level", Level(self.level))
        object.__setattr__(self, "share", fields.number(self.share, "share"))

    @property
    def title(self) -> str:
        return self.name or self.role.value

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role.value, "unit": self.unit, "unit_id": self.unit_id, "level": self.level.value,
                "share": fields.plain_number(self.share), "name": self.name, "forward": self.forward}

    @classmethod
    def from_dict(cls, data: Any, field: str) -> StepDefinition:
        data = fields.mapping(data, field)
        if "share" not in data:
            raise InvalidArgument(f"{field}.share", "is required")
        return cls(role=fields.choice(data.get("role"), Role, f"{field}.role"),
                   unit=fields.text(data, "unit", f"{field}.unit"),
                   unit_id=fields.text(data, "unit_id", f"{field}.unit_id"),
                   level=fields.choice(data.get("level"), Level, f"{field}.level"),
                   share=fields.number(data["share"], f"{field}.share"),
                   name=fields.text(data, "name", f"{field}.name", required=False),
                   forward=fields.flag(data, "forward", f"{field}.forward"))


@dataclass(frozen=True)
class ProcessDefinition:
    """The steps, the statutory duration and the supplement rules of one procedure version, for
    one dossier's channel (desk and online durations differ: intake sends the one that applies)."""

    steps: tuple[StepDefinition, ...]
    time_type: TimeType
    duration_hours: Decimal | None = None  # working hours (1 working day = 8 h), working_days only
    duration_days: int | None = None  # calendar_days only
    supplement_policy: SupplementPolicy = SupplementPolicy.PAUSE
    supplement_expiry: SupplementExpiry = SupplementExpiry.STOP
    transfer_targets: tuple[UnitRef, ...] = ()  # units at other levels a forward=true step may transfer to

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "transfer_targets", tuple(self.transfer_targets))
        object.__setattr__(self, "time_type", TimeType(self.time_type))
        object.__setattr__(self, "supplement_policy", SupplementPolicy(self.supplement_policy))
        object.__setattr__(self, "supplement_expiry", SupplementExpiry(self.supplement_expiry))
        self._check_duration()
        self._check_steps()
        slugs = [t.unit for t in self.transfer_targets]
        if len(set(slugs)) != len(slugs):
            raise InvalidArgument("transfer_targets", "lists a unit twice")

    def _check_duration(self) -> None:
        if self.time_type is TimeType.WORKING_DAYS:
            if self.duration_days is not None:
                raise InvalidArgument("duration_days", "only for calendar_days procedures; give duration_hours")
            if self.duration_hours is None:
                raise InvalidArgument("duration_hours", "is required for a working_days procedure")
            hours = fields.number(self.duration_hours, "duration_hours")
            if hours <= 0:
                raise InvalidArgument("duration_hours", "must be more than 0")
            object.__setattr__(self, "duration_hours", hours)
        else:
            if self.duration_hours is not None:
                raise InvalidArgument("duration_hours", "only for working_days procedures; give duration_days")
            if self.duration_days is None:
                raise InvalidArgument("duration_days", "is required for a calendar_days procedure")
            fields.whole(self.duration_days, "duration_days", minimum=1)

    def _check_steps(self) -> None:
        # The same rules as intake's catalog loader: routing must not trust a message blindly.
        if not self.steps:
            raise InvalidArgument("steps", "need at least one step")
        for index, step in enumerate(self.steps):
            if not 0 < step.share <= 1:
                raise InvalidArgument(f"steps[{index}].share", f"{step.share} is not a fraction in (0, 1]")
        if self.steps[-1].role is not Role.RETURN:
            raise InvalidArgument(f"steps[{len(self.steps) - 1}].role",
                                  "the last step must be 'return' (the desk returns the result)")
        signed = False
        for index, step in enumerate(self.steps):
            signed = signed or step.role is Role.SIGN
            if step.role is Role.SEAL and not signed:
                raise InvalidArgument(f"steps[{index}].role", "'seal' must come after a 'sign' step")
        total = sum((s.share for s in self.steps), Decimal(0))
        if abs(total - 1) > SHARE_TOLERANCE:
            raise InvalidArgument("steps", f"the shares add up to {total}, not 1")

    # -- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "time_type": self.time_type.value,
            "duration_hours": None if self.duration_hours is None else fields.plain_number(self.duration_hours),
            "duration_days": self.duration_days,
            "supplement_policy": self.supplement_policy.value,
            "supplement_expiry": self.supplement_expiry.value,
            "transfer_targets": [t.to_dict() for t in self.transfer_targets],
        }

    @classmethod
    def from_dict(cls, data: Any, field: str = "process") -> ProcessDefinition:
        """Read the definition from a work message. Unknown keys are ignored, so intake can add a
        field before every routing worker knows it; every known one is checked."""
        data = fields.mapping(data, field)
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            raise InvalidArgument(f"{field}.steps", "must be a list of one or more steps")
        targets = data.get("transfer_targets") or []
        if not isinstance(targets, list):
            raise InvalidArgument(f"{field}.transfer_targets", "must be a list")
        hours, days = data.get("duration_hours"), data.get("duration_days")
        try:
            return cls(
                steps=tuple(StepDefinition.from_dict(s, f"{field}.steps[{i}]") for i, s in enumerate(steps)),
                time_type=fields.choice(data.get("time_type"), TimeType, f"{field}.time_type"),
                duration_hours=None if hours is None else fields.number(hours, f"{field}.duration_hours"),
                duration_days=None if days is None else fields.whole(days, f"{field}.duration_days", minimum=1),
                supplement_policy=fields.choice(data.get("supplement_policy", SupplementPolicy.PAUSE.value),
                                                SupplementPolicy, f"{field}.supplement_policy"),
                supplement_expiry=fields.choice(data.get("supplement_expiry", SupplementExpiry.STOP.value),
                                                SupplementExpiry, f"{field}.supplement_expiry"),
                transfer_targets=tuple(UnitRef.from_dict(t, f"{field}.transfer_targets[{i}]")
                                       for i, t in enumerate(targets)))
        except InvalidArgument as exc:
            if exc.field.startswith(f"{field}."):
                raise
            raise InvalidArgument(f"{field}.{exc.field}", exc.reason) from None  # name the full path

    # -- questions ------------------------------------------------------------------------------

    def transfer_target(self, unit: str) -> UnitRef | None:
        return next((t for t in self.transfer_targets if t.unit == unit), None)

    def due_from(self, start: dt.datetime, calendar: Calendar) -> dt.datetime:
        """The due date of the whole duration counted from ``start`` (a restart after supplement)."""
        return self._after(calendar, start, self._amount(Decimal(1)))

    def deadlines(self, received_at: dt.datetime, due_at: dt.datetime, calendar: Calendar) -> list[dt.datetime]:
        """Each step's deadline: cumulative shares of the duration from ``received_at``, none after
        ``due_at``, the last exactly ``due_at``. Non-decreasing, because the cumulative shares are,
        rounding is monotonic and so is the calendar."""
        out = [min(self._after(calendar, received_at, self._amount(self._cumulative(i))), due_at)
               for i in range(len(self.steps) - 1)]
        return [*out, due_at]

    def remaining_time(self, from_index: int) -> dt.timedelta | int:
        """The statutory time of steps ``from_index`` onwards as the schedule counts it: working time
        (a timedelta) or whole calendar days. The whole duration less where the step before ends,
        so step *i*'s deadline plus ``remaining_time(i + 1)`` is the due date, with no rounding drift."""
        return self._amount(Decimal(1)) - self._amount(self._cumulative(from_index - 1))  # type: ignore[operator]

    def _cumulative(self, index: int) -> Decimal:
        """The share of the duration used up when step ``index`` ends (0 before the first)."""
        return sum((s.share for s in self.steps[: index + 1]), Decimal(0)) if index >= 0 else Decimal(0)

    def _amount(self, share: Decimal) -> dt.timedelta | int:
        """A share of the duration: working minutes (rounded half up), or whole days (half up)."""
        if self.time_type is TimeType.WORKING_DAYS:
            return working_minutes(share * self._hours)
        return int((share * self._days).to_integral_value(ROUND_HALF_UP))

    @property
    def _hours(self) -> Decimal:
        assert self.duration_hours is not None  # checked in __post_init__ for working_days
        return self.duration_hours

    @property
    def _days(self) -> Decimal:
        assert self.duration_days is not None  # checked in __post_init__ for calendar_days
        return Decimal(self.duration_days)

    def _after(self, calendar: Calendar, start: dt.datetime, amount: dt.timedelta | int) -> dt.datetime:
        if isinstance(amount, dt.timedelta):
            return calendar.add_working_hours(start, amount)
        return calendar.add_calendar_days(start, amount)


def working_minutes(hours: Decimal) -> dt.timedelta:
    """Working hours as a whole number of minutes, half up: deadlines people read are in minutes,
    and a 5 % share of 17 days (6.8 h) is 6 h 48 min exactly anyway."""
    return dt.timedelta(minutes=int((hours * 60).to_integral_value(ROUND_HALF_UP)))

