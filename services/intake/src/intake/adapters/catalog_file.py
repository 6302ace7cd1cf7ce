"""Loads the procedure catalog from the operator's YAML (or JSON) files and validates it.

A catalog is one file or a directory: every ``*.yaml``, ``*.yml`` and ``*.json`` file under it
(recursively, in name order; hidden files skipped) contributes ``units``, ``sectors`` and
``procedures``, and exactly one of them sets the catalog's ``version``. Every problem is collected
and reported together — first the shape and types of each entry (pydantic), then the references and
rules across entries and files (plain code) — each naming the file, the path inside it and the
reason::

    catalog/thanh-hoa/procedures/xay-dung.yaml: procedures[2].versions[0].components[1].media_types[0]: \
'image/gif' is not an accepted media type (application/pdf, image/jpeg, image/png)

A procedure lists its versions, oldest first; a version states only what changed, every other field
is taken from the version before it (``version`` and ``effective_from`` excepted). The current
version of a procedure is its highest.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from intake.domain.catalog import (
    Catalog,
    Component,
    Duration,
    Level,
    Procedure,
    Role,
    Sector,
    Step,
    SupplementPolicy,
    TimeType,
    Unit,
)
from intake.domain.submission import ACCEPTED_MEDIA_TYPES
from motcua.areas import CATALOG_SUFFIXES as SUFFIXES
from motcua.areas import catalog_files

SECTIONS = ("version", "units", "sectors", "procedures")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\Z")
UNIT_ID_RE = re.compile(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}\Z")
NATIONAL_CODE_RE = re.compile(r"^[0-9]+\.[0-9]{6}\Z")
PERCENT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*\Z")
NOT_INHERITED = ("version", "effective_from")
EPSILON = 1e-6

Loc = tuple[str | int, ...]


# -- what the loader reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogIssue:
    """One problem: the file, the path inside it (``procedures[2].components[1].code``; empty for
    the file as a whole) and the reason."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.path, self.reason) if part)


class CatalogError(ValueError):
    """The catalog cannot be loaded; ``issues`` lists every problem found."""

    def __init__(self, source: Path | str, issues: Iterable[CatalogIssue]):
        self.source = str(source)
        self.issues = list(issues)
        count = len(self.issues)
        lines = "\n".join(str(i) for i in self.issues)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the catalog {self.source}:\n{lines}")


@dataclass
class CatalogReport:
    """What reading a catalog found: the catalog when it is valid, every issue otherwise."""

    source: Path
    files: list[Path]
    catalog: Catalog | None
    issues: list[CatalogIssue]


def load_catalog(path: Path | str) -> Catalog:
    """The catalog at ``path`` (a file or a directory); CatalogError lists every problem."""
    report = read_catalog(path)
    if report.catalog is None:
        raise CatalogError(report.source, report.issues)
    return report.catalog


def read_catalog(path: Path | str) -> CatalogReport:
    return _Reader(Path(path)).read()


def format_path(loc: Iterable[str | int]) -> str:
    """``("procedures", 2, "components", 1)`` → ``procedures[2].components[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- the shape of the files (pydantic) ------------------------------------------------------------


def _fail(reason: str) -> PydanticCustomError:
    return PydanticCustomError("catalog", "{reason}", {"reason": reason})


def _matching(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise _fail(f"{value!r} is not {what}")
        return value
    return AfterValidator(check)


def _one_of(choices: type[StrEnum], what: str) -> AfterValidator:
    names = [c.value for c in choices]

    def check(value: str) -> str:
        if value not in names:
            raise _fail(f"{value!r} is not {what} ({', '.join(names)})")
        return value
    return AfterValidator(check)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _fail("must not be empty")
    return value


def _media_type(value: str) -> str:
    if value not in ACCEPTED_MEDIA_TYPES:
        raise _fail(f"{value!r} is not an accepted media type ({', '.join(sorted(ACCEPTED_MEDIA_TYPES))})")
    return value


def _share(value: Any) -> tuple[float, bool]:
    """A share of the duration: a number (fraction, or percent when the shares add up to 100) or a
    string like ``"25%"``. Returns (number, given as a percent string)."""
    if isinstance(value, str):
        match = PERCENT_RE.match(value)
        if match is None:
            raise _fail(f"{value!r} is not a share: write a fraction such as 0.25 or a percentage such as '25%'")
        number, percent = float(match.group(1)), True
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number, percent = float(value), False
    else:
        raise _fail(f"{value!r} is not a share: write a fraction such as 0.25 or a percentage such as '25%'")
    if not math.isfinite(number) or number <= 0:
        raise _fail(f"{value!r}: a step's share must be more than 0")
    return number, percent


def _retention(value: Any) -> str | None:
    """A retention class: `permanent` or a whole number of years (1..999)."""
    if value is None or value == "permanent":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 999:
        return str(value)
    raise _fail(f"{value!r} is not a retention class: write permanent or a number of years such as 10")


Slug = Annotated[str, _matching(SLUG_RE, "a slug: lowercase ASCII letters and digits joined by single "
                                         "hyphens, e.g. 'bim-son'")]
UnitId = Annotated[str, _matching(UNIT_ID_RE, "an electronic unit identifier: four dot-separated groups "
                                              "like '000.00.06.H56'")]
NationalCode = Annotated[str, _matching(NATIONAL_CODE_RE, "a national procedure code like '1.004616'")]
Text = Annotated[str, AfterValidator(_not_blank)]
LevelName = Annotated[str, _one_of(Level, "a level")]
RoleName = Annotated[str, _one_of(Role, "a step role")]
TimeTypeName = Annotated[str, _one_of(TimeType, "a time type")]
PolicyName = Annotated[str, _one_of(SupplementPolicy, "a supplement policy")]
MediaType = Annotated[str, AfterValidator(_media_type)]
Days = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    # strict: YAML's numbers stay numbers (an unquoted 1.004616 is not a code), no "yes" for True.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class UnitEntry(_Model):
    slug: Slug
    unit_id: UnitId
    name: Text
    level: LevelName
    parent: Slug | None = None


class SectorEntry(_Model):
    code: Slug
    name: Text


class ComponentEntry(_Model):
    code: Slug
    name: Text
    required: bool = True
    media_types: list[MediaType] = Field(default_factory=lambda: ["application/pdf"], min_length=1)
    originals: Count = 1
    copies: Count = 0
    max_bytes: Annotated[int, Field(gt=0)] | None = None


class DurationEntry(_Model):
    desk: Days
    online: Days | None = None  # None: as at the desk


class StepEntry(_Model):
    role: RoleName
    share: Annotated[Any, AfterValidator(_share)]
    level: LevelName | None = None
    unit: Slug | None = None
    forward: bool = False
    name: str = ""


class ProcedureCode(_Model):
    code: NationalCode


class VersionEntry(_Model):
    version: Annotated[int, Field(gt=0)]
    effective_from: Annotated[date | None, Field(strict=False)] = None
    name: Text
    sector: Slug
    level: LevelName
    handling_level: LevelName | None = None
    units: list[Slug] = Field(default_factory=list)
    fee: Count
    fee_note: str = ""
    # Retention class of the procedure's dossiers in the archive: `permanent` or years (1..999).
    retention: Annotated[Any, AfterValidator(_retention)] = None
    components: list[ComponentEntry] = Field(min_length=1)
    duration: DurationEntry
    time_type: TimeTypeName
    supplement_policy: PolicyName
    process: list[StepEntry] = Field(min_length=1)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "empty"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _reason(error: Any) -> str:
    """pydantic's error, in words an operator editing YAML can act on."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "catalog":
        return str(ctx.get("reason", error["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"must be text, but YAML read {value!r} as a number: put it in quotes"
        return f"must be text, not {_kind(value)}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"must be a whole number, not {value!r}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, not {value!r}"
    if kind == "bool_type":
        return f"must be true or false, not {value!r}"
    if kind == "list_type":
        return f"must be a list, not {_kind(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of fields, not {_kind(value)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt'):g}, not {value!r}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge'):g}, not {value!r}"
    if kind.startswith("date"):
        return f"must be a date such as 2025-07-01, not {value!r}"
    return str(error["msg"])


# -- YAML that refuses duplicate keys ------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; an operator's duplicate is an error."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            continue  # unhashable: construct_mapping reports it
        if key in seen:
            raise yaml.constructor.ConstructorError("while reading a mapping", node.start_mark,
                                                    f"found the key {key!r} twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# -- reading --------------------------------------------------------------------------------------


@dataclass
class _Entry:
    file: str
    loc: Loc
    model: Any


@dataclass
class _Version:
    """One version of a procedure as read: the model when every field passed its shape check, else
    the fields, components and steps that did, so the rules can still be checked on them."""

    loc: Loc  # of the version inside its file
    model: VersionEntry | None
    fields: dict[str, Any]
    components: list[tuple[int, ComponentEntry]]
    component_codes: list[tuple[int, str]]  # of every component that has one, valid or not
    steps: list[tuple[int, StepEntry]]
    all_steps: bool  # every step passed: the order of roles and the sum of shares can be checked
    inherited: frozenset[str]  # the keys it takes from the version before it
    inherited_issues: frozenset[tuple[Loc, str]]  # the issues the version before it had


@dataclass
class _ProcedureDraft:
    file: str
    loc: Loc
    code: str | None  # None when malformed (reported)
    versions: list[_Version] = field(default_factory=list)


class _Reader:
    def __init__(self, source: Path):
        self.source = source
        self.issues: list[tuple[str, Loc, str]] = []  # (file, path, reason)
        self.version: tuple[str, str] | None = None  # (value, file)
        self.units: list[_Entry] = []
        self.sectors: list[_Entry] = []
        self.procedures: list[_ProcedureDraft] = []
        # Names that entries with errors of their own claim: references to them are not reported again.
        self.claimed_units: dict[str, tuple[str, Loc]] = {}  # slug → where
        self.claimed_sectors: dict[str, tuple[str, Loc]] = {}  # code → where
        self.claimed_levels: set[str] = set()

    def issue(self, file: str, loc: Loc, reason: str) -> None:
        self.issues.append((file, loc, reason))

    def read(self) -> CatalogReport:
        files = catalog_files(self.source) if self.source.exists() else []
        if not self.source.exists():
            self.issue(str(self.source), (), "does not exist")
        elif not files:
            self.issue(str(self.source), (), f"holds no catalog file ({', '.join('*' + s for s in SUFFIXES)})")
        for path in files:
            self._read_file(path)
        if files:
            self._check_catalog()
        order = {str(p): n for n, p in enumerate(files)}

        def where(issue: tuple[str, Loc, str]) -> tuple:
            """By file, then by entry (and procedure version); within one, in the order found."""
            return (order.get(issue[0], -1), *((0, p) if isinstance(p, int) else (1, p) for p in issue[1][:4]))

        issues = [CatalogIssue(file, format_path(loc), reason) for file, loc, reason in sorted(self.issues, key=where)]
        catalog = self._build() if not issues else None
        return CatalogReport(self.source, files, catalog, issues)

    # -- phase 1: each file, each entry --------------------------------------------------------

    def _read_file(self, path: Path) -> None:
        file = str(path)
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # a SafeLoader
        except OSError as exc:
            self.issue(file, (), f"cannot be read: {exc.strerror or exc}")
            return
        except UnicodeDecodeError:
            self.issue(file, (), "is not UTF-8 text")
            return
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            self.issue(file, (where,) if where else (), f"is not valid YAML: {exc.problem or exc.context}")
            return
        except yaml.YAMLError as exc:
            self.issue(file, (), f"is not valid YAML: {exc}")
            return
        if raw is None:
            self.issue(file, (), "is empty")
            return
        if not isinstance(raw, dict):
            self.issue(file, (), f"must be a mapping with the sections {', '.join(SECTIONS)}; it is {_kind(raw)}")
            return
        for key in raw:
            if key not in SECTIONS:
                self.issue(file, (str(key),), f"is not a known section ({', '.join(SECTIONS)})")
        if "version" in raw:
            self._read_version(file, raw["version"])
        for section, model, into in (("units", UnitEntry, self.units), ("sectors", SectorEntry, self.sectors)):
            for loc, item in self._items(file, raw, section):
                entry = self._validate(file, loc, model, item)
                if entry is not None:
                    into.append(entry)
                elif isinstance(item, dict):  # claimed, so references to it are not reported too
                    key = "slug" if section == "units" else "code"
                    claimed = self.claimed_units if section == "units" else self.claimed_sectors
                    if isinstance(item.get(key), str):
                        claimed.setdefault(item[key], (file, loc))
                    if section == "units" and isinstance(item.get("level"), str):
                        self.claimed_levels.add(item["level"])
        for loc, item in self._items(file, raw, "procedures"):
            self._read_procedure(file, loc, item)

    def _read_version(self, file: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            hint = ": put it in quotes" if isinstance(value, int | float) and not isinstance(value, bool) else ""
            self.issue(file, ("version",), f"must be text such as \"2026.1\", not {value!r}{hint}")
        elif self.version is not None:
            self.issue(file, ("version",), f"the catalog version is already set in {self.version[1]}; "
                                           "set it in one file only")
        else:
            self.version = (value, file)

    def _items(self, file: str, raw: dict, section: str) -> list[tuple[Loc, Any]]:
        items = raw.get(section)
        if items is None:
            return []
        if not isinstance(items, list):
            self.issue(file, (section,), f"must be a list, not {_kind(items)}")
            return []
        return [((section, index), item) for index, item in enumerate(items)]

    def _validate(self, file: str, loc: Loc, model: type[_Model], item: Any) -> _Entry | None:
        try:
            return _Entry(file, loc, model.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                self.issue(file, loc + tuple(error["loc"]), _reason(error))
            return None

    def _read_procedure(self, file: str, loc: Loc, item: Any) -> None:
        if not isinstance(item, dict):
            self.issue(file, loc, f"must be a mapping with code and versions, not {_kind(item)}")
            return
        code = item.get("code")
        try:
            ProcedureCode.model_validate({"code": code})
        except ValidationError as exc:
            for error in exc.errors():
                self.issue(file, loc + tuple(error["loc"]), _reason(error))
            code = None
        for key in item:
            if key not in ("code", "versions"):
                self.issue(file, loc + (str(key),), "is not a field of a procedure: a procedure has a code and "
                                                    "its versions; this field belongs in each of versions[]")
        versions = item.get("versions")
        if not isinstance(versions, list) or not versions:
            reason = "is required" if versions is None else (
                "must not be empty" if isinstance(versions, list) else f"must be a list, not {_kind(versions)}")
            self.issue(file, loc + ("versions",), f"{reason}: a procedure lists its versions, oldest first")
            return
        draft = _ProcedureDraft(file, loc, code)
        merged: dict[str, Any] = {}
        previous: frozenset[tuple[Loc, str]] = frozenset()
        for index, raw_version in enumerate(versions):
            vloc = loc + ("versions", index)
            if not isinstance(raw_version, dict):
                self.issue(file, vloc, f"must be a mapping of fields, not {_kind(raw_version)}")
                previous = frozenset()
                continue
            inherited = frozenset(k for k in merged if k not in NOT_INHERITED and k not in raw_version)
            merged = {**{k: merged[k] for k in inherited}, **raw_version}
            version, found = _read_version_fields(vloc, merged, inherited, previous)
            for sub, reason in found:
                self._version_issue(file, vloc, inherited, previous, sub, reason)
            draft.versions.append(version)
            previous = frozenset(found)
        self.procedures.append(draft)

    def _version_issue(self, file: str, vloc: Loc, inherited: frozenset[str],
                       inherited_issues: frozenset[tuple[Loc, str]], sub: Loc, reason: str) -> None:
        """An issue of a version; one in a field it takes from the version before is reported there,
        unless it is new here (a rule that depends on fields this version changes)."""
        if sub and sub[0] in inherited:
            if (sub, reason) in inherited_issues:
                return
            reason += " (a field taken from the version before)"
        self.issue(file, vloc + sub, reason)

    # -- phase 2: references and rules across entries and files ------------------------------

    def _check_catalog(self) -> None:
        if self.version is None:
            self.issue(str(self.source), ("version",), "is required: set the catalog version (e.g. "
                                                      "version: \"2026.1\") in one of its files")
        units = self._check_units()
        sectors = self._check_unique(self.sectors, "code", "sector code", self.claimed_sectors)
        if not self.units and not self.claimed_units:
            self.issue(str(self.source), ("units",), "the catalog has no units")
        if not self.procedures and not self.issues:
            self.issue(str(self.source), ("procedures",), "the catalog has no procedures")
        levels = {u.level for u in units.values()} | self.claimed_levels
        seen: dict[str, _ProcedureDraft] = {}
        for draft in self.procedures:
            if draft.code is None:
                pass
            elif draft.code in seen:
                first = seen[draft.code]
                self.issue(draft.file, draft.loc + ("code",), f"procedure {draft.code!r} is defined twice (also "
                                                              f"{first.file}: {format_path(first.loc)})")
            else:
                seen[draft.code] = draft
            self._check_procedure(draft, units, sectors, levels)

    def _check_unique(self, entries: list[_Entry], key: str, what: str,
                      claimed: dict[str, tuple[str, Loc]] | None = None) -> dict[str, Any]:
        """The entries by ``key``; a value used twice is reported at the second entry (or at the valid
        one, when the other has errors of its own)."""
        found: dict[str, _Entry] = {}
        for entry in entries:
            value = getattr(entry.model, key)
            other = (found[value].file, found[value].loc) if value in found else (claimed or {}).get(value)
            if other is not None:
                self.issue(entry.file, entry.loc + (key,), f"duplicate {what} {value!r} (also {other[0]}: "
                                                            f"{format_path(other[1])})")
            if value not in found:
                found[value] = entry
        return {k: e.model for k, e in found.items()}

    def _check_units(self) -> dict[str, UnitEntry]:
        units: dict[str, UnitEntry] = self._check_unique(self.units, "slug", "unit slug", self.claimed_units)
        self._check_unique(self.units, "unit_id", "unit identifier")
        known = set(units) | set(self.claimed_units)
        for entry in self.units:
            unit: UnitEntry = entry.model
            if unit.parent is None:
                if unit.level != Level.PROVINCE:
                    self.issue(entry.file, entry.loc + ("parent",), f"is required for a {unit.level} unit: only a "
                                                                    "province is at the top of the tree")
            elif unit.parent == unit.slug:
                self.issue(entry.file, entry.loc + ("parent",), "a unit cannot be its own parent")
            elif unit.parent not in known:
                self.issue(entry.file, entry.loc + ("parent",), f"{unit.parent!r} is not a unit of the catalog")
            elif unit.parent in units:
                parent = units[unit.parent]
                if Level(parent.level).rank > Level(unit.level).rank:
                    self.issue(entry.file, entry.loc + ("parent",), f"{unit.parent!r} is a {parent.level} unit: a "
                                                                    f"{unit.level} unit cannot be under it")
        reported: set[frozenset[str]] = set()
        for entry in self.units:
            chain, slug = [entry.model.slug], entry.model.parent
            while slug in units and slug not in chain:
                chain.append(slug)
                slug = units[slug].parent
            if slug == entry.model.slug and len(chain) > 1 and frozenset(chain) not in reported:
                reported.add(frozenset(chain))
                loop = " → ".join([*chain, slug])
                self.issue(entry.file, entry.loc + ("parent",), f"the parents go round in a loop: {loop}")
        return units

    def _check_procedure(self, draft: _ProcedureDraft, units: dict[str, UnitEntry], sectors: dict[str, Any],
                         levels: set[str]) -> None:
        before: _Version | None = None
        for index, version in enumerate(draft.versions):
            found: list[tuple[Loc, str]] = []

            def problem(sub: Loc, reason: str, found: list[tuple[Loc, str]] = found,
                        version: _Version = version) -> None:
                found.append((sub, reason))
                self._version_issue(draft.file, version.loc, version.inherited, version.inherited_issues, sub,
                                    reason)

            self._check_version(version, problem, units, sectors, levels)
            number, earlier = version.fields.get("version"), before.fields.get("version") if before else None
            if number is not None and earlier is not None and number <= earlier:
                problem(("version",), f"must be greater than the version before it ({earlier})")
            since = version.fields.get("effective_from")
            earlier_since = before.fields.get("effective_from") if before else None
            if since and earlier_since and since <= earlier_since:
                problem(("effective_from",), f"must be after the version before it ({earlier_since.isoformat()})")
            if index + 1 < len(draft.versions):
                following = draft.versions[index + 1]
                following.inherited_issues = following.inherited_issues | frozenset(found)
            before = version

    def _check_version(self, v: _Version, problem: Callable[[Loc, str], None], units: dict[str, UnitEntry],
                       sectors: dict[str, Any], levels: set[str]) -> None:
        fields = v.fields
        known_units = set(units) | set(self.claimed_units)
        sector = fields.get("sector")
        if sector is not None and sector not in sectors and sector not in self.claimed_sectors:
            known = ", ".join(sorted(sectors)) or "the catalog has none"
            problem(("sector",), f"{sector!r} is not a sector of the catalog ({known})")
        for key in ("level", "handling_level"):
            level = fields.get(key)
            if level is not None and level not in levels:
                problem((key,), f"no unit of the catalog is at level {level!r}")
        receiving = fields.get("units") or []
        for index, slug in enumerate(receiving):
            if slug in receiving[:index]:
                problem(("units", index), f"{slug!r} is listed twice")
            elif slug not in known_units:
                problem(("units", index), f"{slug!r} is not a unit of the catalog")
            elif slug in units and "level" in fields and units[slug].level != fields["level"]:
                problem(("units", index), f"{slug!r} is a {units[slug].level} unit; this procedure is received at "
                                          f"{fields['level']} level")
        codes: dict[str, int] = {}
        for index, code in v.component_codes:
            if code in codes:
                problem(("components", index, "code"), f"duplicate component code {code!r} (also "
                                                       f"components[{codes[code]}])")
            else:
                codes[code] = index
        for index, component in v.components:
            for m, media_type in enumerate(component.media_types):
                if media_type in component.media_types[:m]:
                    problem(("components", index, "media_types", m), f"{media_type!r} is listed twice")
            if component.originals + component.copies == 0:
                problem(("components", index), "needs at least one original or one copy (originals, copies)")
        duration, time_type = fields.get("duration"), fields.get("time_type")
        for key in ("desk", "online") if duration is not None else ():
            days = getattr(duration, key)
            if days is None:
                continue
            if time_type == TimeType.WORKING_DAYS and not float(days * 2).is_integer():
                problem(("duration", key), f"{days:g} working days: only whole or half days")
            if time_type == TimeType.CALENDAR_DAYS and not float(days).is_integer():
                problem(("duration", key), f"{days:g} calendar days: only whole days")
        self._check_process(v, problem, known_units, levels)

    def _check_process(self, v: _Version, problem: Callable[[Loc, str], None], known_units: set[str],
                       levels: set[str]) -> None:
        for index, step in v.steps:
            if step.level is not None and step.unit is not None:
                problem(("process", index), "give the step's level or its unit, not both")
            elif step.level is None and step.unit is None:
                problem(("process", index), "give the step's level (province, district, commune) or its unit "
                                            "(a unit's slug)")
            elif step.level is not None and step.level not in levels:
                problem(("process", index, "level"), f"no unit of the catalog is at level {step.level!r}")
            elif step.unit is not None and step.unit not in known_units:
                problem(("process", index, "unit"), f"{step.unit!r} is not a unit of the catalog")
        if not v.all_steps or not v.steps:
            return
        steps = [step for _, step in v.steps]
        if steps[0].role != Role.RECEIVE:
            problem(("process", 0, "role"), f"the first step must be 'receive' (the one-stop desk registers the "
                                            f"dossier), not {steps[0].role!r}")
        if steps[-1].role != Role.RETURN:
            problem(("process", len(steps) - 1, "role"), f"the last step must be 'return' (the one-stop desk "
                                                         f"returns the result), not {steps[-1].role!r}")
        signed = False
        for index, step in enumerate(steps):
            signed = signed or step.role == Role.SIGN
            if step.role == Role.SEAL and not signed:
                problem(("process", index, "role"), "'seal' must come after a 'sign' step: the organisation seal "
                                                    "is applied only after the competent person has signed")
        total = sum(_fractions(steps))
        if abs(total - 1) > EPSILON:
            given = ", ".join(str(s.share[0]) + ("%" if s.share[1] else "") for s in steps)
            problem(("process",), f"the steps' shares add up to {total * 100:g}%, not 100% ({given})")

    # -- the domain catalog --------------------------------------------------------------------

    def _build(self) -> Catalog:
        assert self.version is not None
        units = {e.model.slug: Unit(slug=e.model.slug, unit_id=e.model.unit_id, name=e.model.name,
                                    level=e.model.level, parent=e.model.parent) for e in self.units}
        sectors = {e.model.code: Sector(code=e.model.code, name=e.model.name) for e in self.sectors}
        procedures = {d.code: tuple(_procedure(d.code, v.model) for v in d.versions if v.model is not None)
                      for d in self.procedures if d.code is not None}
        return Catalog(version=self.version[0], units=units, procedures=procedures, sectors=sectors)


@functools.cache
def _field_adapter(name: str) -> TypeAdapter:
    """Validates one field of a version on its own, as VersionEntry would."""
    info = VersionEntry.model_fields[name]
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
        return TypeAdapter(annotation)  # the model has its own (strict) config
    return TypeAdapter(annotation, config=_Model.model_config)


def _valid_items(items: Any, model: type[_Model]) -> list[tuple[int, Any]]:
    if not isinstance(items, list):
        return []
    valid = []
    for index, item in enumerate(items):
        with contextlib.suppress(ValidationError):  # reported by the whole version's validation
            valid.append((index, model.model_validate(item)))
    return valid


def _read_version_fields(vloc: Loc, merged: dict[str, Any], inherited: frozenset[str],
                         previous: frozenset[tuple[Loc, str]]) -> tuple[_Version, list[tuple[Loc, str]]]:
    """A version's model, or the parts of it that pass, and its shape issues."""
    try:
        model = VersionEntry.model_validate(merged)
    except ValidationError as exc:
        found = [(tuple(e["loc"]), _reason(e)) for e in exc.errors()]
        bad = {loc[0] for loc, _ in found if loc}
        fields = {}
        for name in VersionEntry.model_fields:
            if name in merged and name not in bad:
                with contextlib.suppress(ValidationError):
                    fields[name] = _field_adapter(name).validate_python(merged[name])
        components = _valid_items(merged.get("components"), ComponentEntry)
        raw = merged.get("components")
        codes = [(i, c["code"]) for i, c in enumerate(raw if isinstance(raw, list) else [])
                 if isinstance(c, dict) and isinstance(c.get("code"), str)]
        steps = _valid_items(merged.get("process"), StepEntry)
        all_steps = "process" in fields
        return _Version(vloc, None, fields, components, codes, steps, all_steps, inherited, previous), found
    fields = {name: getattr(model, name) for name in VersionEntry.model_fields}
    return _Version(vloc, model, fields, list(enumerate(model.components)),
                    [(i, c.code) for i, c in enumerate(model.components)], list(enumerate(model.process)), True,
                    inherited, previous), []


def _fractions(steps: list[StepEntry]) -> list[float]:
    """The shares as fractions of the duration: percentages ("25%") are divided by 100, and so are
    plain numbers when, all together, they add up to 100."""
    plain = [s.share[0] for s in steps if not s.share[1]]
    plain_scale = 100.0 if plain and len(plain) == len(steps) and abs(sum(plain) - 100) < EPSILON else 1.0
    return [s.share[0] / (100.0 if s.share[1] else plain_scale) for s in steps]


def _procedure(code: str, v: VersionEntry) -> Procedure:
    return Procedure(
        code=code, version=v.version, name=v.name, sector=v.sector, level=v.level,
        handling_level=v.handling_level, fee=v.fee, fee_note=v.fee_note, effective_from=v.effective_from,
        retention=v.retention or "",
        components=tuple(Component(code=c.code, name=c.name, required=c.required,
                                   media_types=frozenset(c.media_types), originals=c.originals, copies=c.copies,
                                   max_bytes=c.max_bytes) for c in v.components),
        duration=Duration(desk_days=v.duration.desk,
                          online_days=v.duration.online if v.duration.online is not None else v.duration.desk),
        time_type=v.time_type, supplement_policy=v.supplement_policy, units=frozenset(v.units),
        process=tuple(Step(role=s.role, share=share, level=s.level, unit=s.unit, forward=s.forward, name=s.name)
                      for s, share in zip(v.process, _fractions(v.process), strict=True)),
    )
