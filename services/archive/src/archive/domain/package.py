"""The archival package of a finished dossier: which files it holds and the metadata it carries
(a subset of Decree 30/2020's file metadata; the full set deepens in the archive issue)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PackageFile:
    path: str  # inside the package's data/ directory
    key: str
    sha256: str
    size: int
    media_type: str


def package_files(documents: list[dict], result: dict) -> list[PackageFile]:
    """Submitted documents under submitted/, the signed result under result/; file names come from
    the checksum, never from what the applicant typed."""
    files = [PackageFile(f"submitted/{i + 1:02d}-{d['sha256'][:16]}{_extension(d['media_type'])}",
                         d["key"], d["sha256"], d["size"], d["media_type"])
             for i, d in enumerate(documents)]
    files.append(PackageFile(f"result/{result['sha256'][:16]}.pdf", result["key"], result["sha256"],
                             result["size"], result["media_type"]))
    return files


def bag_info(*, code: str, procedure_code: str, receiving_unit: str, received_at: datetime,
             returned_at: datetime, document_count: int, retention: str) -> dict[str, str]:
    return {
        "Source-Organization": f"motcua one-stop shop, unit {receiving_unit}",
        "External-Identifier": code,
        "Internal-Sender-Description": f"Dossier {code} of procedure {procedure_code}",
        "File-Code": code,
        "Retention": retention,
        "Start-Date": received_at.date().isoformat(),
        "End-Date": returned_at.date().isoformat(),
        "Document-Count": str(document_count),
        "Language": "vi",
    }


def _extension(media_type: str) -> str:
    return {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}.get(media_type, ".bin")
