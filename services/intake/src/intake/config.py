"""Settings of the intake service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from motcua.settings import PlatformSettings

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "catalog" / "thanh-hoa"


class IntakeSettings(PlatformSettings):
    service: ClassVar[str] = "intake"

    catalog_path: Path | None = Field(None, description="Procedure catalog: a YAML file, or a directory whose "
                                      "`*.yaml`, `*.yml` and `*.json` files together form the catalog; empty: the "
                                      "bundled Thanh Hóa sample, services/intake/catalog/thanh-hoa/. Check it "
                                      "with `python -m intake.catalog_cli validate PATH`.")

    @property
    def catalog_file(self) -> Path:
        """The catalog's file or directory."""
        return self.catalog_path or DEFAULT_CATALOG
    max_document_bytes: int = Field(20 * 1024 * 1024, description="Largest document accepted, in bytes "
                                    "(a catalog component may set a lower limit of its own).")
    max_documents: int = Field(30, description="Most documents in one dossier.")
    max_dossier_bytes: int = Field(60 * 1024 * 1024, description="Largest total size of the documents of one "
                                   "dossier, in bytes. Keep it below the gRPC message limit (64 MiB), which "
                                   "carries the whole submission.")
    lookup_url: str = Field("https://dichvucong.thanhhoa.gov.vn/tra-cuu-ho-so", description="Public address "
                            "where applicants look a dossier up; printed with the code on the receipt.")
