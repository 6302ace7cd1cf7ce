"""Archive's use cases for a dossier: record what happens to it (the events archive subscribes to
are its life, the PREMIS log of the package) and, when it is returned, make its archival package
and keep it write-once in two verified copies with a ledger entry.

A dossier is archived once everything it packs has arrived: ``dossier.returned`` names the forms
issued after the return (``forms_to_follow``: form 05, which routing's worker renders and seals
once the result is returned) and the return waits in the life record until each one's
``dossier.form_issued`` is recorded; whichever of them arrives last archives the dossier (both are
version-checked writes of the one life record, so the later one sees the other).

Archiving is written to survive a crash at any point and to run again from the top:

1. freeze the dossier's life record (later events are not part of the package);
2. build the package (deterministic bytes: same dossier, same SHA-256, same key);
3. for each copy, find a stored version with those bytes (an earlier attempt's) or write one
   under Object Lock, then read it back and check its SHA-256;
4. append the ledger entry (unique per dossier, hash-chained) with dossier.archived in its
   outbox — published only now that both copies are verified.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.application.ports import BagSpec, CheckSignatures, Offload, Packer, Vault, direct, offloaded
from archive.domain import ledger
from archive.domain.package import (
    PackageFile,
    SignatureCheck,
    bag_info,
    decree30_metadata,
    package_files,
    premis_log,
    signed_by_the_platform,
)
from archive.domain.retention import Retention
from motcua.events.v1 import events_pb2
from motcua.messaging.consuming import NOTHING_TO_REMEMBER
from motcua.messaging.envelope import build_event
from motcua.objects import IntegrityError, ObjectRef
from motcua.protobufs import document_ref, timestamp
from motcua.unit_of_work import UnitOfWork, UnitsOfWork

log = logging.getLogger(__name__)
SOURCE = "/motcua/archive"
PACKAGE_MEDIA_TYPE = "application/x-tar"


@dataclass(frozen=True)
class RecordLifeEvent:
    """One event of a dossier's life (received, assigned, step completed, supplemented, signed)."""

    dossier_id: str
    code: str
    area: str
    event_id: str
    type: str  # dossier.received, document.signed, ...
    at: datetime
    actors: tuple[str, ...] = ()
    detail: str = ""
    retention: str = ""  # from dossier.received: the procedure's retention class
    procedure_name: str = ""
    applicant: str = ""
    receipt: dict[str, Any] | None = None
    form: str = ""  # dossier.form_issued: which form ("01", "05"...) ...
    document: dict[str, Any] | None = None  # ... and its sealed PDF as stored


@dataclass(frozen=True)
class ArchiveDossier:
    """Archive a returned dossier (from routing's dossier.returned)."""

    dossier_id: str
    code: str
    area: str
    receiving_unit: str
    procedure_code: str
    documents: tuple[dict[str, Any], ...]  # document references as received and supplemented
    result: dict[str, Any]  # the signed result's reference
    received_at: datetime
    returned_at: datetime
    traceparent: str | None = None
    event_id: str = ""
    forms: tuple[dict[str, Any], ...] = ()  # routing's forms: 02, 04 (and 05 in returns of before forms_to_follow)
    forms_to_follow: tuple[str, ...] = ()  # issued after the return, each by its dossier.form_issued: "05"

    def to_record(self) -> dict[str, Any]:
        """As the life record keeps a return that waits for its forms (plain JSON)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "documents": list(self.documents),
                "forms": list(self.forms), "forms_to_follow": list(self.forms_to_follow),
                "received_at": self.received_at.isoformat(), "returned_at": self.returned_at.isoformat()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ArchiveDossier:
        return cls(**{**record, "documents": tuple(record["documents"]), "forms": tuple(record["forms"]),
                      "forms_to_follow": tuple(record["forms_to_follow"]),
                      "received_at": datetime.fromisoformat(record["received_at"]),
                      "returned_at": datetime.fromisoformat(record["returned_at"])})

    def missing_forms(self, life: Mapping[str, Any]) -> list[str]:
        """The forms to follow that the life record has not received yet."""
        return [f for f in self.forms_to_follow if f not in (life.get("forms_issued") or {})]


@dataclass(frozen=True)
class ArchivePolicy:
    default_retention: str = "permanent"
    lock_mode: str = "GOVERNANCE"  # COMPLIANCE in production
    permanent_lock_years: int = 100
    access_regime: str = "restricted"
    fixity_interval: timedelta = timedelta(days=30)


@dataclass
class Lives:
    """What the archive learns of dossiers before they are returned (and of a returned one, the
    forms issued after its return, which ``archive`` — the Archivist — then packs)."""

    uows: UnitsOfWork
    schema: type  # the life record's schema (opaque here)
    archive: Callable[[ArchiveDossier], None] | None = None

    def record(self, c: RecordLifeEvent) -> object:
        """Answers NOTHING_TO_REMEMBER: the life record keeps each event's id (a redelivery finds
        it there, or the record frozen, and writes nothing but the archiving it still allows), so
        a processed record would remember the event twice; without it an event costs one write and
        one commit, not two. The form that archives the dossier gets its record with the ledger
        entry (the Archivist's last write)."""
        life = self.uows.run(lambda uow: self._record(uow, c), what=f"recording {c.type} of {c.code}")
        waiting = (life or {}).get("awaiting_return")
        if waiting and self.archive is not None:
            returned = ArchiveDossier.from_record(waiting)
            if not returned.missing_forms(life or {}):
                self.archive(returned)  # the last form its return waited for
        return NOTHING_TO_REMEMBER

    def _record(self, uow: UnitOfWork, c: RecordLifeEvent) -> dict[str, Any] | None:
        doc = uow.get(self.schema, c.dossier_id)
        item = {"id": c.event_id, "type": c.type, "at": c.at.astimezone(UTC).isoformat(), "actors": list(c.actors),
                "detail": c.detail}
        if doc is None:
            doc = {"_id": c.dossier_id, "code": c.code, "area": c.area, "events": [], "frozen": False}
            write = uow.add
        else:
            if any(e["id"] == c.event_id for e in doc["events"]):
                # Delivered again: a crash or a failed copy may have come before the archiving it
                # allows, after the freeze too (the form that came last, whose archiving froze it).
                return doc
            if doc.get("frozen"):
                log.warning("event after the package was made; not in the package",
                            extra={"code": c.code, "type": c.type})
                return None
            write = uow.save
        doc["events"] = [*doc["events"], item]
        for name in ("retention", "procedure_name", "applicant"):
            if getattr(c, name):
                doc[name] = getattr(c, name)
        if c.receipt:
            doc["receipt"] = c.receipt
        if c.form and c.document:
            doc["forms_issued"] = {**(doc.get("forms_issued") or {}), c.form: c.document}
        write(self.schema, doc)
        uow.commit()
        return doc


@dataclass
class Archivist:
    """Handles :class:`ArchiveDossier`."""

    uows: UnitsOfWork
    objects: Any  # motcua.objects.ObjectStore: where the dossier's documents are (the platform's bucket)
    vaults: Sequence[Vault]  # the write-once copies: primary and copy
    pack: Packer
    ledger_schema: type
    life_schema: type
    policy: ArchivePolicy = field(default_factory=ArchivePolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    offload: Offload = direct
    # the signing api's validation of the package's signed PDFs (None: recorded as not validated)
    check_signatures: CheckSignatures | None = None
    # test hook: called with a stage name ("copied:primary", "copied:copy") — a crash point
    checkpoint: Callable[[str], None] = lambda stage: None

    def __call__(self, command: ArchiveDossier) -> None:
        if self.uows.start().collection(self.ledger_schema).find({"dossier_id": command.dossier_id}, limit=1):
            return  # archived before: its entry (or the relay) publishes what it caused
        if command.forms_to_follow:
            life = self.uows.run(lambda uow: self._await(uow, command), what=f"recording the return of {command.code}")
            if missing := command.missing_forms(life):
                # Lives.record archives it when the last of them arrives.
                log.info("returned dossier waits for its forms", extra={"code": command.code, "forms": missing})
                return
        life = self.uows.run(lambda uow: self._freeze(uow, command), what=f"freezing {command.code}")
        retention = Retention.parse(life.get("retention") or self.policy.default_retention)
        retain_until = retention.retain_until(command.returned_at, self.policy.permanent_lock_years)
        files = self._files(command, life)
        checks = {f.path: self.offload(self._check, f) for f in files if signed_by_the_platform(f)}
        spec = self._spec(command, life, retention, files, checks)
        with offloaded(self.offload, self.pack(spec, self._read)) as built:
            key = f"packages/{command.area}/{command.code}/{built.sha256}.tar"
            copies = []
            for vault in self.vaults:
                version = self.offload(vault.find, key, built.sha256)
                if version is None:
                    version = self.offload(vault.write, key, built.path, built.sha256, built.size, retain_until)
                found = self.offload(vault.digest, key, version)
                if found != built.sha256:  # retried from the queue; the next attempt writes again
                    raise IntegrityError(f"{vault.name}:{key}@{version}", built.sha256, str(found))
                copies.append({**vault.describe(), "key": key, "version_id": version})
                self.checkpoint(f"copied:{vault.name}")
            entry = {
                "dossier_id": command.dossier_id, "code": command.code, "area": command.area,
                "package_sha256": built.sha256, "package_size": built.size, "copies": copies,
                "retention": retention.label(), "retain_until": retain_until.isoformat(),
                "lock_mode": self.policy.lock_mode, "manifest_sha256": built.manifest_sha256,
                "document_count": len(files),
                "documents": [{"path": f"data/{f.path}", "key": f.key, "sha256": f.sha256, "size": f.size,
                               "role": f.role, "media_type": f.media_type} for f in files],
            }
        self.uows.run(lambda uow: self._enter(uow, command, entry), what=f"ledger entry of {command.code}")

    def _await(self, uow: UnitOfWork, c: ArchiveDossier) -> dict[str, Any]:
        """Keep the return in the life record, where the forms that follow it find it."""
        doc = uow.get(self.life_schema, c.dossier_id)
        if doc is not None and (doc.get("frozen") or doc.get("awaiting_return")):
            return doc
        if doc is None:
            doc = {"_id": c.dossier_id, "code": c.code, "area": c.area, "events": [], "frozen": False,
                   "awaiting_return": c.to_record()}
            uow.add(self.life_schema, doc)
        else:
            doc = {**doc, "awaiting_return": c.to_record()}
            uow.save(self.life_schema, doc)
        # While a form is missing this is the return's last write (the form archives it): its
        # processed record rides with it. Not when every form is here: the archiving follows.
        uow.commit(completes_message=bool(c.missing_forms(doc)))
        return doc

    def _freeze(self, uow: UnitOfWork, c: ArchiveDossier) -> dict[str, Any]:
        doc = uow.get(self.life_schema, c.dossier_id)
        if doc is not None and doc.get("frozen"):
            return doc
        returned = {"id": c.event_id or f"{c.dossier_id}-returned", "type": "dossier.returned",
                    "at": c.returned_at.astimezone(UTC).isoformat(), "actors": [c.receiving_unit],
                    "detail": "result returned to the applicant"}
        if doc is None:
            doc = {"_id": c.dossier_id, "code": c.code, "area": c.area, "events": [returned], "frozen": True}
            uow.add(self.life_schema, doc)
        else:
            doc = {**doc, "frozen": True, "events": [*doc["events"], returned]}
            uow.save(self.life_schema, doc)
        uow.commit()
        return doc

    @staticmethod
    def _files(c: ArchiveDossier, life: Mapping[str, Any]) -> list[PackageFile]:
        forms = ([life["receipt"]] if life.get("receipt") else []) + list(c.forms)
        forms += [life["forms_issued"][f] for f in c.forms_to_follow]
        return package_files(list(c.documents), c.result, forms)

    def _check(self, file: PackageFile) -> SignatureCheck:
        if self.check_signatures is None:
            return SignatureCheck.not_validated("no signature validator is configured for this archive")
        return self.check_signatures(file, self._read(file))

    def _spec(self, c: ArchiveDossier, life: Mapping[str, Any], retention: Retention, files: list[PackageFile],
              checks: Mapping[str, SignatureCheck]) -> BagSpec:
        signed = [e for e in life.get("events", ()) if e["type"] == "document.signed"]
        signers = signed[-1]["actors"] if signed else []
        signed_at = datetime.fromisoformat(signed[-1]["at"]) if signed else None
        info = bag_info(code=c.code, procedure_code=c.procedure_code, receiving_unit=c.receiving_unit,
                        received_at=c.received_at, returned_at=c.returned_at, document_count=len(files),
                        retention=retention.label())

        def metadata(pages: Mapping[str, int | None]) -> dict[str, object]:
            return {
                "data/metadata/decree30.json": decree30_metadata(
                    code=c.code, procedure_code=c.procedure_code, procedure_name=life.get("procedure_name", ""),
                    receiving_unit=c.receiving_unit, applicant=life.get("applicant", ""),
                    received_at=c.received_at, returned_at=c.returned_at, retention=retention.label(),
                    access_regime=self.policy.access_regime, files=files, pages=pages, signers=signers,
                    signed_at=signed_at),
                "data/metadata/premis.json": premis_log(code=c.code, life=life.get("events", ()),
                                                        package_created_at=c.returned_at, files=files,
                                                        signature_checks=checks),
            }
        return BagSpec(c.code, tuple(files), info, c.returned_at, metadata)

    def _enter(self, uow: UnitOfWork, c: ArchiveDossier, fields: dict[str, Any]) -> None:
        entries = uow.collection(self.ledger_schema)
        if entries.find({"dossier_id": c.dossier_id}, limit=1):
            return  # a concurrent delivery entered it first
        previous = entries.find({}, sort=[("seq", -1)], limit=1)
        now = self.clock()
        entry = ledger.seal({**fields, "recorded_at": now.astimezone(UTC).isoformat()},
                           previous[0] if previous else None)
        archived = build_event(
            name="dossier.archived", source=SOURCE, subject=c.code, area=c.area, traceparent=c.traceparent,
            data=events_pb2.DossierArchived(
                dossier_id=c.dossier_id, code=c.code, district=c.receiving_unit, receiving_unit=c.receiving_unit,
                area=c.area, package=document_ref({
                    "key": fields["copies"][0]["key"], "sha256": fields["package_sha256"],
                    "size": fields["package_size"], "media_type": PACKAGE_MEDIA_TYPE, "name": f"{c.code}.tar"}),
                manifest_sha256=fields["manifest_sha256"], document_count=fields["document_count"],
                archived_at=timestamp(now), package_sha256=fields["package_sha256"],
                copies=[events_pb2.ArchivedCopy(**copy) for copy in fields["copies"]],
                retention=fields["retention"], retain_until=timestamp(datetime.fromisoformat(fields["retain_until"])),
                lock_mode=fields["lock_mode"], ledger_seq=entry["seq"], ledger_hash=entry["hash"]))
        uow.add(self.ledger_schema, {
            **entry, "_id": f"{entry['seq']:012d}", "fixity_due_at": now + self.policy.fixity_interval,
            "fixity": {"state": "verified at writing", "checked_at": now.isoformat()}, "legal_hold": False,
            "repairs": []}, [archived])
        # The last write of dossier.returned (both copies are verified before it; dossier.archived
        # leaves through the outbox): its processed record rides with it. Not with the freeze
        # above: a failed copy after it must find the message again.
        uow.commit(completes_message=True)
        log.info("dossier archived", extra={"code": c.code, "seq": entry["seq"], "bytes": fields["package_size"]})

    def _read(self, file: PackageFile) -> Iterable[bytes]:
        return self.objects.open(ObjectRef(key=file.key, sha256=file.sha256, size=file.size,
                                           media_type=file.media_type))


def dumps(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
