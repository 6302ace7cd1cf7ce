"""Settings of the archive service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from motcua.settings import PlatformSettings


class ArchiveSettings(PlatformSettings):
    service: ClassVar[str] = "archive"

    retention: str = Field("permanent", description="Retention written into archival packages "
                           "(`permanent` or a number of years) until per-procedure retention exists.")
