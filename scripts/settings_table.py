"""The README's configuration table, generated from the services' settings classes.

`python scripts/settings_table.py` prints it; `--write` puts it into README.md between the
settings-table markers. tests/contract/test_readme.py checks the README carries exactly this table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from archive.config import ArchiveSettings
from intake.config import IntakeSettings
from motcua.settings import settings_table
from notify.config import NotifySettings
from routing.config import RoutingSettings
from signing.config import SigningSettings

CLASSES = [IntakeSettings, RoutingSettings, SigningSettings, NotifySettings, ArchiveSettings]
README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def table() -> str:
    return settings_table(CLASSES)


def readme_table(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write() -> None:
    text = README.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    README.write_text(f"{before}{START}\n{table()}\n{END}{after}", encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        print(table())
