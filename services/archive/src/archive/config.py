"""Settings of the archive service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from motcua.settings import PlatformSettings


class ArchiveSettings(PlatformSettings):
    service: ClassVar[str] = "archive"

    retention: str = Field("permanent", description="Retention of a dossier whose procedure has no retention class "
                           "in the catalog (`permanent` or a number of years).")
    archive_bucket: str = Field("motcua-archive", description="Write-once bucket (created with S3 Object Lock) "
                                "holding the primary copy of every archival package.")
    archive_copy_bucket: str = Field("motcua-archive-copy", description="Write-once bucket holding the second "
                                     "copy (on `archive_copy_s3_endpoint` when set, else on `s3_endpoint`).")
    archive_copy_s3_endpoint: str | None = Field(None, description="S3 endpoint host:port of the second copy "
                                                 "(independent media); unset: the platform's S3 endpoint.")
    archive_copy_s3_access_key: str | None = Field(None, description="Access key of the second copy's S3 "
                                                   "(unset: `s3_access_key`).")
    archive_copy_s3_secret_key: str | None = Field(None, description="Secret key of the second copy's S3 "
                                                   "(unset: `s3_secret_key`).")
    archive_copy_s3_secure: bool | None = Field(None, description="HTTPS for the second copy's S3 "
                                                "(unset: `s3_secure`).")
    archive_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = Field(
        "GOVERNANCE", description="S3 Object Lock mode of every package version: GOVERNANCE (an identity "
        "allowed to bypass it can still delete: development) or COMPLIANCE (no one can before the date: production).")
    archive_permanent_lock_years: int = Field(100, ge=1, description="Years a `permanent` package is locked for "
                                              "(S3 has no unlimited lock; extend before it ends).")
    archive_access_regime: str = Field("restricted", description="Access regime written into the Decree 30/2020 "
                                       "metadata of packages (e.g. `public`, `restricted`).")
    archive_fixity_interval_s: float = Field(30 * 86400, gt=0, description="Seconds between two fixity checks of "
                                             "the same package.")
    archive_fixity_sweep_s: float = Field(60, gt=0, description="Seconds between fixity sweeps of a worker.")
    archive_fixity_batch: int = Field(20, ge=1, description="Packages a fixity sweep checks at most.")
    archive_fixity_lease_s: float = Field(900, gt=0, description="Seconds a claimed fixity check is reserved to "
                                          "its worker (another replica takes it after a crash).")
    tsa_url: str | None = Field(
        None, description="RFC 3161 time-stamping authority URL (signing and archive): signing timestamps "
        "every signature there (required: the signing worker does not start without it); archive timestamps "
        "its ledger head there (unset: the ledger is not timestamped, and says so).")
    trust_roots: Path | None = Field(
        None, description="PEM root certificates (signing and archive): signing validates its signers' chains "
        "and the SigningService API validates documents against them (required by signing); archive's "
        "`verify-ledger` checks the TSA's certificate chains to them (unset: only the token's imprint and "
        "signature are checked).")
    archive_stamp_interval_s: float = Field(3600, gt=0, description="Seconds between two timestamps of the "
                                            "ledger head (only when it changed).")
    archive_url_ttl_s: int = Field(300, ge=1, le=3600, description="Lifetime of a presigned download URL (s).")
