"""Settings of the signing service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from motcua.settings import PlatformSettings


class SigningSettings(PlatformSettings):
    service: ClassVar[str] = "signing"

    pki_dir: Path = Field(Path("var/pki"), description="Directory of the development PKI (root CA, the "
                          "official's and the seal's keys), created on first start; replaced by an HSM "
                          "over PKCS#11 in production.")
