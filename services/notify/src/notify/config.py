"""Settings of the notify service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from motcua.settings import PlatformSettings


class NotifySettings(PlatformSettings):
    service: ClassVar[str] = "notify"
