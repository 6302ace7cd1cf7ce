"""The archival package of a finished dossier: which files it holds, the file and document
metadata Decree 30/2020 asks for, and the PREMIS-style log of the dossier's life.

Everything here is a pure function of what the archive recorded about the dossier, so the same
dossier always gives the same package (a retry after a crash rebuilds the same bytes)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
PREMIS_VERSION = "3.0"


@dataclass(frozen=True)
class PackageFile:
    path: str  # inside the package's data/ directory
    key: str
    sha256: str
    size: int
    media_type: str
    role: str = "submitted"  # submitted | result | form
    name: str = ""  # what the document was called (metadata only, never a path)


@dataclass(frozen=True)
class BagSpec:
    name: str
    files: tuple[PackageFile, ...]
    info: Mapping[str, str]
    mtime: datetime
    # The metadata files (path under the bag root, e.g. data/metadata/x.json → JSON document),
    # given each payload file's page count.
    metadata: Callable[[Mapping[str, int | None]], Mapping[str, object]] = lambda pages: {}


@dataclass(frozen=True)
class BuiltPackage:
    path: Path  # the tar file (removed when the build's context ends)
    sha256: str
    size: int
    manifest_sha256: str


def package_files(documents: list[dict], result: dict, forms: Sequence[dict] = ()) -> list[PackageFile]:
    """Submitted documents under submitted/, the signed result under result/, the receipt and
    other forms under forms/; file names come from the checksum, never from what the applicant
    typed."""
    files = [PackageFile(f"submitted/{i + 1:02d}-{d['sha256'][:16]}{_extension(d['media_type'])}",
                         d["key"], d["sha256"], d["size"], d["media_type"], "submitted", d.get("name", ""))
             for i, d in enumerate(documents)]
    files += [PackageFile(f"forms/{i + 1:02d}-{f['sha256'][:16]}{_extension(f['media_type'])}",
                          f["key"], f["sha256"], f["size"], f["media_type"], "form", f.get("name", ""))
              for i, f in enumerate(forms)]
    files.append(PackageFile(f"result/{result['sha256'][:16]}{_extension(result['media_type'])}", result["key"],
                             result["sha256"], result["size"], result["media_type"], "result",
                             result.get("name", "")))
    return files


def signed_by_the_platform(file: PackageFile) -> bool:
    """A PDF the platform signed or sealed (the result, a form): the archive has its signatures
    validated. The applicant's own documents are kept as submitted."""
    return file.role in ("result", "form") and file.media_type == "application/pdf"


def bag_info(*, code: str, procedure_code: str, receiving_unit: str, received_at: datetime,
             returned_at: datetime, document_count: int, retention: str) -> dict[str, str]:
    """bag-info.txt: fixed values only (``Bagging-Date`` is the return date, not today)."""
    return {
        "Source-Organization": f"motcua one-stop shop, unit {receiving_unit}",
        "External-Identifier": code,
        "Internal-Sender-Description": f"Dossier {code} of procedure {procedure_code}",
        "File-Code": code,
        "Retention": retention,
        "Start-Date": received_at.date().isoformat(),
        "End-Date": returned_at.date().isoformat(),
        "Bagging-Date": returned_at.date().isoformat(),
        "Document-Count": str(document_count),
        "Language": "vi",
    }


def decree30_metadata(*, code: str, procedure_code: str, procedure_name: str, receiving_unit: str,
                      applicant: str, received_at: datetime, returned_at: datetime, retention: str,
                      access_regime: str, files: Sequence[PackageFile], pages: Mapping[str, int | None],
                      signers: Sequence[str], signed_at: datetime | None) -> dict[str, Any]:
    """The file (hồ sơ) and per-document metadata of Decree 30/2020 (Appendix on electronic
    records): file code, title, retention, access regime, creator, language, dates, counts; per
    document its code/number, date, issuing body, signer, summary, pages, format, language,
    access regime. ``pages`` maps a file's path to its page count (None when not paginated)."""
    documents = []
    for index, f in enumerate(files, start=1):
        is_result = f.role == "result"
        documents.append({
            "path": f"data/{f.path}",
            "document_code": f"{code}.{index:02d}",
            "number_notation": code if is_result else "",
            "issued_on": (signed_at or returned_at).date().isoformat() if is_result else received_at.date().isoformat(),
            "issuing_body": receiving_unit if f.role != "submitted" else applicant,
            "signer": list(signers) if is_result else [],
            "summary": f.name or {"result": "Kết quả giải quyết thủ tục hành chính",
                                  "form": "Biểu mẫu", "submitted": "Thành phần hồ sơ"}[f.role],
            "role": f.role,
            "page_count": pages.get(f.path),
            "format": f.media_type,
            "language": "vi",
            "access_regime": access_regime,
            "sha256": f.sha256,
            "size": f.size,
        })
    return {
        "standard": "Decree 30/2020/ND-CP",
        "file": {
            "file_code": code,
            "title": f"Hồ sơ {code}: {procedure_name or procedure_code}",
            "procedure_code": procedure_code,
            "retention": retention,
            "access_regime": access_regime,
            "creator": receiving_unit,
            "language": "vi",
            "start_date": received_at.date().isoformat(),
            "end_date": returned_at.date().isoformat(),
            "document_count": len(files),
            "page_count": sum(p for p in (pages.get(f.path) for f in files) if p),
        },
        "documents": documents,
    }


# What each recorded event of a dossier's life is in the PREMIS event type vocabulary
# (id.loc.gov/vocabulary/preservation/eventType), with the platform's own name beside it.
PREMIS_TYPES = {
    "dossier.received": "accession",
    "dossier.form_issued": "creation",  # form 01, sealed by the receiving unit
    "dossier.assigned": "transfer",
    "dossier.step_completed": "processing",
    "dossier.supplemented": "accession",
    "document.signed": "digital signature generation",
    "dossier.returned": "dissemination",
}


# A signature verdict as a PREMIS event outcome (the verdict itself is in the outcome's detail).
PREMIS_OUTCOMES = {"valid": "success", "indeterminate": "warning", "invalid": "failure"}


@dataclass(frozen=True)
class SignatureCheck:
    """What the signing api's validation said of one signed PDF of the package (a result, a form)."""

    outcome: str  # valid | indeterminate | invalid | not validated
    signers: tuple[str, ...] = ()
    detail: str = ""  # each signature's level and verdict, and the problems found

    @classmethod
    def not_validated(cls, why: str) -> SignatureCheck:
        return cls("not validated", (), why)


def premis_log(*, code: str, life: Sequence[Mapping[str, Any]], package_created_at: datetime,
               files: Sequence[PackageFile], signature_checks: Mapping[str, SignatureCheck] | None = None
               ) -> dict[str, Any]:
    """The dossier's life as PREMIS 3 events (JSON): every recorded event in time order, a
    digital signature validation per signed PDF of the package (``signature_checks``, by the
    file's package path: the signing api's verdict), the package creation and the digests
    calculated. Events of the archive's own work carry the package's time (the return), so the
    same dossier still gives the same bytes."""
    events: list[dict[str, Any]] = []
    agents: dict[str, dict[str, str]] = {}
    # time order; at the same instant, the order the archive learned them in (the return last)
    for _, item in sorted(enumerate(life), key=lambda pair: (pair[1]["at"], pair[0])):
        agent_ids = []
        for role, agent in (("executing program", "motcua"), *(("implementer", a) for a in item.get("actors", ()))):
            if agent:
                agents.setdefault(agent, {"agentIdentifierType": "motcua", "agentIdentifierValue": agent,
                                          "agentType": "software" if agent == "motcua" else "person or unit"})
                agent_ids.append({"linkingAgentIdentifierType": "motcua", "linkingAgentIdentifierValue": agent,
                                  "linkingAgentRole": role})
        events.append(_event(item["id"], PREMIS_TYPES.get(item["type"], "processing"), item["type"], item["at"],
                             item.get("detail", ""), "success", agent_ids))
    created = package_created_at.isoformat()
    for path, check in sorted((signature_checks or {}).items()):
        signers = ", ".join(check.signers) or "none found"
        events.append(_event(f"{code}-signatures-{path}", "digital signature validation",
                             "archive.signature_check", created, f"data/{path}: signers {signers}",
                             PREMIS_OUTCOMES.get(check.outcome, check.outcome), [],
                             f"verdict {check.outcome}: {check.detail}"))
    events.append(_event(f"{code}-package", "information package creation", "archive.package", created,
                         f"BagIt package of dossier {code}, {len(files)} files", "success", []))
    events.append(_event(f"{code}-digests", "message digest calculation", "archive.digests", created,
                         "SHA-256 of every payload file (manifest-sha256.txt)", "success", []))
    return {
        "premis_version": PREMIS_VERSION,
        "object": {"objectIdentifierType": "dossier-code", "objectIdentifierValue": code,
                   "objectCategory": "intellectual entity"},
        "events": events,
        "agents": sorted(agents.values(), key=lambda a: a["agentIdentifierValue"]),
    }


def _event(event_id: str, premis_type: str, motcua_type: str, at: str, detail: str, outcome: str,
           agents: list[dict[str, str]], outcome_detail: str = "") -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventIdentifier": {"eventIdentifierType": "motcua", "eventIdentifierValue": event_id},
        "eventType": premis_type,
        "motcuaEventType": motcua_type,
        "eventDateTime": at,
        "eventDetailInformation": [{"eventDetail": detail}],
        "eventOutcomeInformation": [{"eventOutcome": outcome}],
        "linkingAgentIdentifier": agents,
    }
    if outcome_detail:
        event["eventOutcomeInformation"][0]["eventOutcomeDetail"] = [{"eventOutcomeDetailNote": outcome_detail}]
    return event


def _extension(media_type: str) -> str:
    return {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}.get(media_type, ".bin")
