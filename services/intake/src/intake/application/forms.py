"""Intake's forms, issued by the worker once the dossier's change is committed: form 01 (receipt
and appointment) for an accepted dossier, form 03 (refusal with reasons) for a refused one. The
PDF is sealed by the receiving unit (its organisation signature through the signing api, the
``Sealer`` port), then stored under the dossier's prefix and its reference recorded on the dossier,
once, with ``dossier.form_issued`` in the same write's outbox (the archive packs form 01 from it).
When sealing fails the message fails (retried; parked with the reason when the unit has no seal):
no unsealed form is ever stored or recorded."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from intake.application import events
from intake.application.ports import FormRenderer, Records
from intake.domain.catalog import Catalog, Procedure, TimeType
from intake.domain.dossier import Dossier
from intake.domain.forms import ReceiptData, RefusalData
from motcua.objects import ObjectStore
from motcua.sealing import Sealer
from motcua.store.port import Collection
from motcua.unit_of_work import UnitOfWork, UnitsOfWork

log = logging.getLogger(__name__)
DESK_OFFICIAL = "Bộ phận Một cửa"


def duration_text(procedure: Procedure, online: bool) -> str:
    days = procedure.duration.days(online)
    shown = f"{days:g}".replace(".", ",")
    unit = "ngày làm việc" if TimeType(procedure.time_type) is TimeType.WORKING_DAYS else "ngày"
    return f"{shown} {unit}"


class Forms:
    def __init__(self, uows: UnitsOfWork, objects: ObjectStore, catalog: Catalog, lookup_url: str,
                 records: Records, renderer: FormRenderer, sealer: Sealer,
                 offload: Callable[..., Any] = lambda f, *a: f(*a),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._uows = uows
        self._clock = clock
        self._records = records.dossiers
        self._dossiers: Collection = uows.store.collection(records.dossiers.schema)
        self._renderer = renderer
        self._sealer = sealer
        self._objects = objects
        self._catalog = catalog
        self._lookup_url = lookup_url
        self._offload = offload  # PDF rendering is CPU work: off the eventlet hub

    def issue(self, dossier_id: str, form: str) -> None:
        # The sealed form stored by the first attempt. A retried write (routing's progress changed
        # the dossier meanwhile: a version conflict) records that one: rendering, sealing and
        # storing it again cost a form's CPU and a seal each time and left an unreferenced copy.
        stored: dict[str, Any] = {}
        self._uows.run(lambda uow: self._issue(uow, dossier_id, form, stored),
                       what=f"issuing form {form} of {dossier_id}")

    def _issue(self, uow: UnitOfWork, dossier_id: str, form: str, stored: dict[str, Any]) -> None:
        doc = self._dossiers.get(dossier_id)
        if doc is None:
            raise LookupError(f"no dossier {dossier_id}")  # retried: the write may be on its way
        dossier = self._records.from_document(doc)
        if dossier.receipt is not None:
            return  # issued before: a repeated message changes nothing
        if not stored:
            pdf = self._seal(self._offload(self._render, dossier, form), dossier, form)
            stored.update(self._objects.put_bytes(f"intake/{dossier.id}", pdf, "application/pdf").to_dict())
        dossier.receipt = {**stored, "name": f"mau-{form}-{dossier.code}.pdf", "component": f"form-{form}"}
        uow.save(self._dossiers, {**doc, **self._records.to_document(dossier)},
                 [events.form_issued(dossier, form, self._clock())])
        # The form is sealed and stored already; this write is the last the message needs (its
        # event leaves through the outbox): the message's processed record rides with it.
        uow.commit(completes_message=True)
        log.info("form issued", extra={"form": form})

    def _seal(self, pdf: bytes, dossier: Dossier, form: str) -> bytes:
        # The desk of the receiving unit issues 01 and 03: its seal (a commune's for a commune's dossier).
        # On the caller's thread, not offloaded: a grpcio call from eventlet's tpool threads left the
        # worker's timers (its outbox relay) waiting forever.
        return self._sealer(pdf, dossier.receiving_unit, f"Mẫu {form} {dossier.code}")

    def _render(self, dossier: Dossier, form: str) -> bytes:
        procedure = self._catalog.procedure_version(dossier.procedure_code, dossier.procedure_version or 1)
        unit = self._catalog.unit(dossier.receiving_unit)
        applicant = dossier.applicant
        # The row of the desk's decision: later rows (routing's progress) may follow it already.
        decision = next(row for row in reversed(dossier.history)
                        if row["action"] == ("refused" if form == "03" else "received"))
        official = decision.get("actor") or DESK_OFFICIAL
        if form == "03":
            return self._renderer.refusal(RefusalData(
                unit_name=unit.name, applicant_name=applicant.get("full_name", ""),
                procedure_name=procedure.name, procedure_code=procedure.code,
                reasons=tuple(dossier.refusal_reasons), refused_at=datetime.fromisoformat(decision["at"]),
                official_name=official, place="Thanh Hóa", code=dossier.code,
                applicant_id_number=applicant.get("identity_number", ""),
                applicant_address=applicant.get("address", "")))
        received = Counter(d.component for d in dossier.documents)
        components = tuple((c.name, c.originals * received[c.code], c.copies * received[c.code])
                           for c in procedure.components if received[c.code])
        return self._renderer.receipt(ReceiptData(
            unit_name=unit.name, code=dossier.code, applicant_name=applicant.get("full_name", ""),
            procedure_name=procedure.name, procedure_code=procedure.code, components=components,
            duration=duration_text(procedure, online=dossier.channel == "online"),
            received_at=dossier.received_at, appointment_at=dossier.due_at, lookup_url=self._lookup_url,
            official_name=official, place="Thanh Hóa", applicant_id_number=applicant.get("identity_number", ""),
            applicant_address=applicant.get("address", ""), applicant_phone=applicant.get("phone", ""),
            applicant_email=applicant.get("email", ""), result_delivery="Tại Bộ phận Một cửa hoặc trực tuyến"))
