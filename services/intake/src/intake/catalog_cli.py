"""The procedure catalog from the command line.

    python -m intake.catalog_cli validate [PATH]

checks the catalog at PATH (a YAML file or a directory of them; default: ``MOTCUA_CATALOG_PATH``, else
the bundled Thanh Hóa sample) as the intake service would load it, and prints OK with what it holds,
or every problem found (file: path: reason), exiting with 1. It reads files only: nothing connects,
nothing starts.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from intake.adapters.catalog_file import CatalogReport, read_catalog
from intake.config import IntakeSettings
from intake.domain.catalog import Level


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intake.catalog_cli", description="The procedure catalog.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a catalog: OK with counts, or every problem (exit 1)")
    validate.add_argument("path", nargs="?", type=Path,
                          help="catalog file or directory (default: MOTCUA_CATALOG_PATH, else the bundled sample)")
    args = parser.parse_args(argv)
    path = args.path or IntakeSettings.load().catalog_file
    report = read_catalog(path)
    if report.catalog is None:
        for issue in report.issues:
            print(issue)
        count = len(report.issues)
        print(f"FAILED: {count} problem{'s' if count != 1 else ''} in {path}", file=sys.stderr)
        return 1
    print(summary(report))
    return 0


def summary(report: CatalogReport) -> str:
    catalog = report.catalog
    assert catalog is not None
    levels = Counter(u.level for u in catalog.units.values())
    by_level = ", ".join(f"{levels[level]} {level}" for level in Level if levels[level])
    versions = sum(len(v) for v in catalog.procedures.values())
    files = len(report.files)
    return (f"OK {report.source}: catalog version {catalog.version}, {files} file{'s' if files != 1 else ''}: "
            f"{len(catalog.units)} units ({by_level}), {len(catalog.sectors)} sectors, "
            f"{len(catalog.procedures)} procedures ({versions} versions)")


if __name__ == "__main__":
    sys.exit(main())
