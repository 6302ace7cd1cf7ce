"""The procedure catalog as the domain sees it: administrative units, sectors and versioned
procedures (thủ tục hành chính) with their components, durations and process definitions.

Pure Python. The catalog is read-only once loaded (``intake.adapters.catalog_file`` builds and
validates it from the operator's YAML files); these types only describe it and answer questions
about it. Units form a generic tree — province → district/town → commune/ward, or province →
commune/ward in a 2-level province — with sector agencies allowed under a unit of their own level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from motcua.areas import UnitPlace, area_of
from motcua.errors import FailedPrecondition, InvalidArgument, NotFound, quote

HOURS_PER_WORKING_DAY = 8


class Level(StrEnum):
    """Levels of administrative units, from the top."""

    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"

    @property
    def rank(self) -> int:
        """0 for the province, growing downwards."""
        return list(Level).index(self)


class TimeType(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


class SupplementPolicy(StrEnum):
    """What a supplement request does to the due date (DOMAIN.md, Time rules)."""

    PAUSE = "pause"  # the due date moves by the working time spent waiting
    RESTART = "restart"  # the full duration again from resubmission


class Role(StrEnum):
    """Who acts at a step of a procedure's process."""

    RECEIVE = "receive"  # the one-stop desk receives and registers
    ASSIGN = "assign"  # a head of office assigns a specialist
    REVIEW = "review"  # a specialist examines (thẩm định)
    APPROVE = "approve"  # a leader approves
    SIGN = "sign"  # the competent person signs (personal certificate)
    SEAL = "seal"  # the clerk applies the organisation seal (after the signature)
    RETURN = "return"  # the one-stop desk returns the result


@dataclass(frozen=True)
class Unit:
    """An administrative unit (a province, district, town, commune, ward) or a sector agency."""

    slug: str  # "bim-son": names its queues
    unit_id: str  # electronic identifier, four dot-separated groups: "000.00.06.H56"
    name: str
    level: Level | str  # a Level; plain strings are taken as their Level
    parent: str | None = None  # slug of the unit above; None for the province

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", Level(self.level))


@dataclass(frozen=True)
class Sector:
    """A field of procedures (lĩnh vực), e.g. ``ho-tich`` "Hộ tịch"."""

    code: str
    name: str


@dataclass(frozen=True)
class Component:
    """A component of a dossier (thành phần hồ sơ)."""

    code: str  # "don-de-nghi": what a submitted document names
    name: str
    required: bool = True
    media_types: frozenset[str] = frozenset({"application/pdf"})
    originals: int = 1  # bản chính
    copies: int = 0  # bản sao
    max_bytes: int | None = None  # this component's own size limit, when below the platform's


@dataclass(frozen=True)
class Duration:
    """The statutory duration, in days of the procedure's time type (half days allowed for
    working days)."""

    desk_days: float
    online_days: float

    def days(self, online: bool) -> float:
        return self.online_days if online else self.desk_days


@dataclass(frozen=True)
class Step:
    """One step of a process definition. The unit acting is either a level, resolved along the
    receiving unit's chain (``level``), or one named unit (``unit``, a slug)."""

    role: Role | str
    share: float  # fraction of the duration, 0 < share <= 1; the shares of a process add up to 1
    level: Level | str | None = None
    unit: str | None = None
    forward: bool = False  # may forward the dossier to another unit or level (liên thông)
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))
        if self.level is not None:
            object.__setattr__(self, "level", Level(self.level))


@dataclass(frozen=True)
class Procedure:
    """One version of an administrative procedure."""

    code: str  # national code, "1.004616"
    name: str
    sector: str  # sector code
    components: tuple[Component, ...] = ()
    version: int = 1
    level: Level | str = Level.DISTRICT  # the level whose units receive it
    handling_level: Level | str | None = None  # the level that decides; None: the same as ``level``
    fee: int = 0  # VND
    fee_note: str = ""
    duration: Duration = Duration(desk_days=1, online_days=1)
    time_type: TimeType | str = TimeType.WORKING_DAYS
    supplement_policy: SupplementPolicy | str = SupplementPolicy.PAUSE
    process: tuple[Step, ...] = ()
    units: frozenset[str] = frozenset()  # receiving units (slugs); empty: every unit of ``level``
    effective_from: date | None = None
    # How long the archive keeps its dossiers: `permanent` or a number of years ("": the archive's default).
    retention: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "process", tuple(self.process))
        object.__setattr__(self, "units", frozenset(self.units))
        object.__setattr__(self, "level", Level(self.level))
        object.__setattr__(self, "handling_level", Level(self.handling_level or self.level))
        object.__setattr__(self, "time_type", TimeType(self.time_type))
        object.__setattr__(self, "supplement_policy", SupplementPolicy(self.supplement_policy))

    @property
    def media_types(self) -> frozenset[str]:
        """Every media type some component accepts."""
        return frozenset().union(*(c.media_types for c in self.components))

    @property
    def required_components(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.required)

    def component(self, code: str) -> Component | None:
        return next((c for c in self.components if c.code == code), None)

    def working_hours(self, online: bool) -> float | None:
        """The duration in working hours (one working day = 8 hours); None for calendar days."""
        if self.time_type is not TimeType.WORKING_DAYS:
            return None
        return self.duration.days(online) * HOURS_PER_WORKING_DAY


def procedure_sort_key(code: str) -> tuple[int, str]:
    """National codes in order: "2.000815" after "1.004616", "10.000001" after both."""
    head, _, tail = code.partition(".")
    return (int(head), tail) if head.isdigit() else (-1, code)


def unit_sort_key(unit_id: str) -> tuple[str, ...]:
    """Units in tree order when identifiers are hierarchical (000.00.00.H56 before 000.00.06.H56
    before 000.01.06.H56 before 000.00.12.H56): the groups read from the right."""
    return tuple(reversed(unit_id.split(".")))


@dataclass(frozen=True)
class Catalog:
    version: str
    units: Mapping[str, Unit]  # by slug
    procedures: Mapping[str, tuple[Procedure, ...]]  # by code: its versions, oldest first
    sectors: Mapping[str, Sector] = field(default_factory=dict)  # by code
    _by_unit_id: Mapping[str, Unit] = field(init=False, repr=False, compare=False, default_factory=dict)
    _places: Mapping[str, UnitPlace] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        procedures = {code: tuple(sorted(vs, key=lambda p: p.version)) for code, vs in self.procedures.items()}
        object.__setattr__(self, "units", MappingProxyType(dict(self.units)))
        object.__setattr__(self, "procedures", MappingProxyType(procedures))
        object.__setattr__(self, "sectors", MappingProxyType(dict(self.sectors)))
        object.__setattr__(self, "_by_unit_id", MappingProxyType({u.unit_id: u for u in self.units.values()}))
        object.__setattr__(self, "_places", MappingProxyType(
            {u.slug: UnitPlace(u.slug, str(u.level), u.parent) for u in self.units.values()}))

    # -- units -------------------------------------------------------------------------------

    def unit(self, slug: str) -> Unit:
        if not slug:
            raise InvalidArgument("receiving_unit", "is required")
        try:
            return self.units[slug]
        except KeyError:
            raise NotFound(f"unit {quote(slug)} is not a unit of the catalog") from None

    def unit_by_id(self, unit_id: str) -> Unit:
        try:
            return self._by_unit_id[unit_id]
        except KeyError:
            raise NotFound(f"unit {quote(unit_id)} is not a unit of the catalog") from None

    def ancestors(self, slug: str) -> list[Unit]:
        """The units above ``slug``, nearest first."""
        chain, seen = [], {slug}
        parent = self.unit(slug).parent
        while parent is not None and parent not in seen and parent in self.units:
            seen.add(parent)
            chain.append(self.units[parent])
            parent = self.units[parent].parent
        return chain

    def area(self, slug: str) -> Unit:
        """The area ``slug`` lies in (``motcua.areas``): its district-level unit, or the province for
        the units with no district above them. Its dossiers are worked, swept and counted there."""
        self.unit(slug)
        return self.units[area_of(slug, self._places)]

    def areas(self) -> list[str]:
        """Every area of the catalog, sorted."""
        return sorted({area_of(slug, self._places) for slug in self.units})

    def children(self, slug: str) -> list[Unit]:
        self.unit(slug)
        return sorted((u for u in self.units.values() if u.parent == slug), key=lambda u: unit_sort_key(u.unit_id))

    def list_units(self, parent: str | None = None, level: Level | str | None = None) -> list[Unit]:
        """Units in tree order; with ``parent``, its direct children only; with ``level``, only
        units of that level."""
        units: Iterable[Unit] = self.children(parent) if parent else self.units.values()
        if level:
            units = [u for u in units if u.level == Level(level)]
        return sorted(units, key=lambda u: unit_sort_key(u.unit_id))

    def levels(self) -> set[Level]:
        """The levels this catalog's tree has (a 2-level province has no district)."""
        return {Level(u.level) for u in self.units.values()}

    # -- procedures --------------------------------------------------------------------------

    def procedure(self, code: str) -> Procedure:
        """The current version (the highest) of a procedure."""
        return self.versions(code)[-1]

    def procedure_version(self, code: str, version: int) -> Procedure:
        versions = self.versions(code)
        for procedure in versions:
            if procedure.version == version:
                return procedure
        known = ", ".join(str(p.version) for p in versions)
        raise NotFound(f"procedure {quote(code)} has no version {version} (versions: {known})")

    def versions(self, code: str) -> tuple[Procedure, ...]:
        if not code:
            raise InvalidArgument("procedure_code", "is required")
        try:
            return self.procedures[code]
        except KeyError:
            raise NotFound(f"procedure {quote(code)} is not in the catalog") from None

    def receives(self, unit: Unit, procedure: Procedure) -> bool:
        """Whether ``unit`` receives dossiers of ``procedure``."""
        if procedure.units:
            return unit.slug in procedure.units
        return unit.level == procedure.level

    def require_receives(self, unit: Unit, procedure: Procedure) -> None:
        """FailedPrecondition unless ``unit`` receives dossiers of ``procedure``, naming the
        procedure, the unit and where the catalog has it received. A precondition, not an invalid
        argument: the unit and the procedure both exist, and whether one receives the other is the
        catalog's current answer (a new catalog version may move a procedure to another level)."""
        if self.receives(unit, procedure):
            return
        if procedure.units:
            named = sorted(procedure.units)
            shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
            levels = ", ".join(sorted({Level(self.units[s].level).value for s in named if s in self.units}))
            where = f"only at the units {shown} (level {levels})"
        else:
            where = f"at units of level {Level(procedure.level).value}"
        raise FailedPrecondition(
            f"receiving_unit: procedure {procedure.code} ({procedure.name}) is not received at {unit.slug} "
            f"({Level(unit.level).value} level): the catalog has it received {where}")

    def list_procedures(self, level: Level | str | None = None, sector: str | None = None,
                        unit: str | None = None) -> list[Procedure]:
        """Current versions in national-code order, filtered by the level that receives them, their
        sector (code) and a unit that receives them (slug)."""
        receiving = self.unit(unit) if unit else None
        found = []
        for code in sorted(self.procedures, key=procedure_sort_key):
            procedure = self.procedure(code)
            if level and procedure.level != Level(level):
                continue
            if sector and procedure.sector != sector:
                continue
            if receiving is not None and not self.receives(receiving, procedure):
                continue
            found.append(procedure)
        return found
