"""The README tells the truth about configuration and the two commands."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _table_module():
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_table_matches_the_settings_classes():
    module = _table_module()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.readme_table(readme) == module.table(), (
        "README configuration table is stale: run .venv/bin/python scripts/settings_table.py --write")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make run" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
