"""The names notify shows the applicant and the events do not carry — the procedure's and the
receiving unit's — read from the catalog every service already reads (MOTCUA_CATALOG_PATH)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from motcua.areas import CATALOG_SUFFIXES


class CatalogDirectory:
    def __init__(self, catalog: Path):
        self._procedures: dict[str, str] = {}
        self._units: dict[str, str] = {}
        if not catalog.exists():  # an image without the catalog: codes and slugs stand for names
            files: list[Path] = []
        else:
            files = [catalog] if catalog.is_file() else sorted(
                p for p in catalog.rglob("*") if p.suffix in CATALOG_SUFFIXES)
        for path in files:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            if not isinstance(data, dict):
                continue
            for unit in data.get("units") or []:
                if isinstance(unit, dict) and unit.get("slug"):
                    self._units[str(unit["slug"])] = str(unit.get("name") or unit["slug"])
            for procedure in data.get("procedures") or []:
                if not isinstance(procedure, dict) or not procedure.get("code"):
                    continue
                names = [v.get("name") for v in procedure.get("versions") or [] if isinstance(v, dict)]
                names = [n for n in names if n] or [procedure.get("name")]
                if names[-1]:
                    self._procedures[str(procedure["code"])] = str(names[-1])

    def procedure_name(self, procedure_code: str) -> str:
        return self._procedures.get(procedure_code, f"thủ tục {procedure_code}" if procedure_code else "")

    def unit_name(self, unit_slug: str) -> str:
        return self._units.get(unit_slug, unit_slug)
