"""Settings of the routing service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from motcua.settings import PlatformSettings


class RoutingSettings(PlatformSettings):
    service: ClassVar[str] = "routing"
