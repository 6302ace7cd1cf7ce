"""Areas: the shard the platform's work is split by (DESIGN.md, "area" for the shard, "unit" for
who receives or acts, "level" for commune/district/province).

Every administrative unit of the catalog lies in exactly one **area**: the district-level unit
(district, town, provincial city) it belongs to — itself when it is one. Units with no district
above them — the province, its sector agencies, and the communes of a 2-level province — lie in
the **province's area** (the root of the tree). A dossier is worked in the area of the unit that
received it: its work queues are ``<service>.<area>``, its public events are published with routing
key ``<area>.<event type>``, and SLA sweeps and statistics are kept per area. The receiving unit
itself stays in the dossier and in every event's payload.

Pure Python: the catalog's intake loader builds its tree with :func:`area_of`; workers read only
the catalog's ``units`` sections (:func:`read_units`) to learn which areas exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_SUFFIXES = (".yaml", ".yml", ".json")
AREA_LEVEL = "district"


@dataclass(frozen=True)
class UnitPlace:
    """Where a unit sits in the tree: what the area of a unit depends on."""

    slug: str
    level: str  # province | district | commune
    parent: str | None = None


def area_of(slug: str, units: Mapping[str, UnitPlace]) -> str:
    """The area of unit ``slug``: its nearest district-level unit (itself included), else the root
    of its tree (the province). KeyError when ``slug`` is not a unit."""
    unit = units[slug]
    seen = {slug}
    while True:
        if str(unit.level) == AREA_LEVEL:
            return unit.slug
        if unit.parent is None or unit.parent in seen or unit.parent not in units:
            return unit.slug  # the root: the province (or a tree without a province above)
        seen.add(unit.parent)
        unit = units[unit.parent]


def areas_of(units: Mapping[str, UnitPlace]) -> dict[str, str]:
    """unit slug → area slug, for every unit."""
    return {slug: area_of(slug, units) for slug in units}


def catalog_files(path: Path) -> list[Path]:
    """The files a catalog at ``path`` is made of: the file itself, or every ``*.yaml``, ``*.yml``
    and ``*.json`` file under the directory (recursively, in name order; hidden files skipped)."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*")
                  if p.suffix in CATALOG_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


class CatalogUnitsError(ValueError):
    """The catalog's units cannot be read (the intake loader reports every problem in detail)."""


def read_units(path: Path) -> dict[str, UnitPlace]:
    """The units of the catalog at ``path`` (only their slug, level and parent). The catalog is
    validated by intake's loader (``python -m intake.catalog_cli validate``); this reader only
    refuses what it cannot use."""
    units: dict[str, UnitPlace] = {}
    files = catalog_files(path)
    if not files or not all(f.exists() for f in files):
        raise CatalogUnitsError(f"{path}: no catalog there")
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
            raw = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise CatalogUnitsError(f"{file}: cannot be read: {exc}") from exc
        for item in (raw or {}).get("units") or [] if isinstance(raw, dict) else []:
            if not isinstance(item, dict) or not item.get("slug") or not item.get("level"):
                raise CatalogUnitsError(f"{file}: a unit without slug or level: {str(item)[:80]}")
            units[str(item["slug"])] = UnitPlace(str(item["slug"]), str(item["level"]),
                                                 str(item["parent"]) if item.get("parent") else None)
    if not units:
        raise CatalogUnitsError(f"{path}: the catalog has no units")
    return units


def catalog_areas(path: Path) -> list[str]:
    """Every area of the catalog at ``path``, sorted."""
    return sorted(set(areas_of(read_units(path)).values()))
