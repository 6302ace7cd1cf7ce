"""Settings of the intake service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from motcua.settings import SAMPLE_CATALOG, PlatformSettings

DEFAULT_CATALOG = SAMPLE_CATALOG  # the bundled Thanh Hóa sample

class IntakeSettings(PlatformSettings):
    service: ClassVar[str] = "intake"

    max_document_bytes: int = Field(20 * 1024 * 1024, description="Largest document accepted, in bytes "
                                    "(a catalog component may set a lower limit of its own).")
    max_documents: int = Field(30, description="Most documents in one dossier.")
    max_dossier_bytes: int = Field(60 * 1024 * 1024, description="Largest total size of the documents of one "
                                   "dossier, in bytes. Keep it below the gRPC message limit (64 MiB), which "
                                   "carries the whole submission.")
    lookup_url: str = Field("https://dichvucong.thanhhoa.gov.vn/tra-cuu-ho-so", description="Public address "
                            "where applicants look a dossier up; printed with the code on the receipt.")
