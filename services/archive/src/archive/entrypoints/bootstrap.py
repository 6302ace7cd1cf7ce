"""Builds archive's adapters from settings and wires the use cases (worker, api and CLI share it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from archive.adapters.bags import build_package
from archive.adapters.records import DossierLifeRecord, LedgerRecord, LedgerStampRecord
from archive.adapters.signatures import SignatureValidator
from archive.adapters.vaults import S3Vault
from archive.application.archiving import ArchivePolicy, Archivist, Lives
from archive.application.fixity import Fixity
from archive.application.ledger import Ledger
from archive.application.ports import Offload, direct
from archive.config import ArchiveSettings
from motcua.objects import ObjectStore
from motcua.unit_of_work import UnitsOfWork

SCHEMAS = (DossierLifeRecord, LedgerRecord, LedgerStampRecord)


def vaults(settings: ArchiveSettings) -> list[S3Vault]:
    primary = ObjectStore(settings, bucket=settings.archive_bucket)
    copy = ObjectStore(settings, bucket=settings.archive_copy_bucket, endpoint=settings.archive_copy_s3_endpoint,
                       access_key=settings.archive_copy_s3_access_key,
                       secret_key=settings.archive_copy_s3_secret_key, secure=settings.archive_copy_s3_secure)
    return [S3Vault("primary", primary, settings.archive_lock_mode), S3Vault("copy", copy, settings.archive_lock_mode)]


def policy(settings: ArchiveSettings) -> ArchivePolicy:
    return ArchivePolicy(default_retention=settings.retention, lock_mode=settings.archive_lock_mode,
                         permanent_lock_years=settings.archive_permanent_lock_years,
                         access_regime=settings.archive_access_regime,
                         fixity_interval=timedelta(seconds=settings.archive_fixity_interval_s))


def archivist(settings: ArchiveSettings, uows: UnitsOfWork, objects: ObjectStore, copies: list[S3Vault],
              offload: Offload = direct) -> Archivist:
    return Archivist(uows, objects, copies, build_package, LedgerRecord, DossierLifeRecord, policy(settings),
                     clock=settings.clock(), offload=offload,
                     check_signatures=SignatureValidator.from_settings(settings))


def lives(uows: UnitsOfWork, archivist: Archivist | None = None) -> Lives:
    return Lives(uows, DossierLifeRecord, archivist)


def timestamper(settings: ArchiveSettings):
    if not settings.tsa_url:
        return None
    from archive.adapters.timestamps import HttpTimestamper

    return HttpTimestamper(settings.tsa_url, trust_roots=settings.trust_roots)


def ledger(settings: ArchiveSettings, uows: UnitsOfWork, offload: Offload = direct) -> Ledger:
    return Ledger(uows, LedgerRecord, LedgerStampRecord, timestamper(settings), settings.clock(), offload)


def fixity(settings: ArchiveSettings, uows: UnitsOfWork, copies: list[S3Vault], offload: Offload = direct) -> Fixity:
    return Fixity(uows, copies, LedgerRecord, timedelta(seconds=settings.archive_fixity_interval_s),
                  timedelta(seconds=settings.archive_fixity_lease_s), settings.archive_fixity_batch,
                  settings.clock(), offload)


def timers(settings: ArchiveSettings, uows: UnitsOfWork, copies: list[S3Vault],
           offload: Offload = direct) -> dict[str, Callable[[], object]]:
    sweep = fixity(settings, uows, copies, offload)
    book = ledger(settings, uows, offload)
    return {"fixity_sweep": sweep.sweep, "stamp_ledger": book.stamp_head}
