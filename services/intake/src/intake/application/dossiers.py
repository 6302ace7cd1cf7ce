"""Intake's use cases: submit, accept, refuse, supplement, withdraw, track and get a dossier.

Submission order keeps the safety rules: everything is checked before anything is stored; the
documents go to object storage first (content-addressed, so a retry rewrites the same keys); then
one write stores the dossier with its pending messages; then the outbox publishes the messages of
that write (only those: a retried request that finds the dossier publishes nothing, whatever is
still pending there is its first write's, or the relay's after a crash).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from intake.application import events
from intake.application.ports import Records
from intake.application.uploads import Uploads
from intake.domain import lifecycle
from intake.domain.catalog import Catalog, Procedure
from intake.domain.dossier import DocumentRef, Dossier, Status, code_counter, dossier_code, dossier_id_for
from intake.domain.lifecycle import Channel
from intake.domain.process import process_definition
from intake.domain.submission import (
    Applicant,
    IncomingDocument,
    Limits,
    ResolvedDocument,
    check_applicant,
    check_documents,
    check_request_id,
)
from motcua.access import require_area
from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, quote
from motcua.logs import bind
from motcua.messagebus import MessageBus
from motcua.messaging.envelope import new_traceparent
from motcua.objects import ObjectStore
from motcua.store.port import Collection
from motcua.store.schema import utc_ms
from motcua.unit_of_work import UnitOfWork, UnitsOfWork
from motcua.worktime import Calendar, vietnam_calendar

log = logging.getLogger(__name__)
OBJECT_PREFIX = "intake"


@dataclass(frozen=True)
class SubmitDossier:
    request_id: str
    fingerprint: str  # of the whole request without its id: tells a retry from a reuse
    procedure_code: str
    receiving_unit: str  # the unit's slug
    applicant: Applicant | None
    documents: list[IncomingDocument]
    traceparent: str | None = None
    channel: Channel = Channel.DESK
    uploaded: list[tuple[str, str, str]] = ()  # (upload id, name, component) of UploadDocument's uploads


@dataclass(frozen=True)
class SupplementDossier:
    """The applicant's answer to a supplement request: new documents, inline or uploaded."""

    request_id: str
    fingerprint: str
    code: str
    documents: list[IncomingDocument]
    uploaded: list[tuple[str, str, str]] = ()
    traceparent: str | None = None


@dataclass(frozen=True)
class AcceptDossier:
    """The desk accepts an online or postal submission (status 1 → 2)."""

    request_id: str
    code: str
    official: str
    traceparent: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class RefuseDossier:
    """The desk refuses a submission, with its reasons (form 03)."""

    request_id: str
    code: str
    official: str
    reasons: list[str]
    traceparent: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class WithdrawDossier:
    """The applicant withdraws the dossier (status 7)."""

    request_id: str
    code: str
    reason: str
    identity_number: str
    traceparent: str | None = None
    fingerprint: str = ""


class Dossiers:
    """Intake's use cases on dossiers; every write is a unit of work (:mod:`motcua.unit_of_work`),
    run again on what another writer left when it met theirs."""

    def __init__(self, uows: UnitsOfWork, objects: ObjectStore, catalog: Catalog,
                 limits: Limits, records: Records, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 calendar: Calendar | None = None, served_areas: Iterable[str] | None = None):
        self._calendar = calendar or vietnam_calendar()
        self._uows = uows
        self._records = records.dossiers
        self._dossiers: Collection = uows.store.collection(records.dossiers.schema)
        self._objects = objects
        self._catalog = catalog
        # Areas whose workers run: a dossier of any other area would wait in a queue no one reads.
        self._served_areas = frozenset(served_areas) if served_areas is not None else None
        self._limits = limits
        self._clock = clock
        self.uploads = Uploads(uows.store, objects, limits, records.uploads, clock)

    def bus(self) -> MessageBus:
        """The handlers of intake's commands (what the api's servicer hands its calls to)."""
        return MessageBus({
            SubmitDossier: self.submit,
            SupplementDossier: self.supplement,
            AcceptDossier: lambda c: self.accept(c.request_id, c.code, c.official, c.traceparent, c.fingerprint),
            RefuseDossier: lambda c: self.refuse(c.request_id, c.code, c.official, c.reasons, c.traceparent,
                                                 c.fingerprint),
            WithdrawDossier: lambda c: self.withdraw(c.request_id, c.code, c.reason, c.identity_number,
                                                     c.traceparent, c.fingerprint),
        })

    def submit(self, command: SubmitDossier) -> Dossier:
        check_request_id(command.request_id)
        # A write meeting another (a client's retry racing the first call: the same request id)
        # runs again and finds the first answer.
        return self._uows.run(lambda uow: self._submit(uow, command), what="the submission")

    def _submit(self, uow: UnitOfWork, command: SubmitDossier) -> Dossier:
        existing = self._by_request_id(command.request_id)
        if existing is not None:
            return self._repeat(existing, command)
        procedure = self._catalog.procedure(command.procedure_code)
        unit = self._catalog.unit(command.receiving_unit)
        area = self._catalog.area(unit.slug).slug
        require_area(area)
        self._catalog.require_receives(unit, procedure)
        if self._served_areas is not None and area not in self._served_areas:
            raise FailedPrecondition(f"unit {quote(unit.slug)} lies in area {quote(area)}, which this platform does "
                                     f"not serve (served: {', '.join(sorted(self._served_areas)) or 'none'})")
        check_applicant(command.applicant)
        uploaded = self.uploads.resolve(command.uploaded)
        check_documents(command.documents, procedure, self._limits, uploaded)

        dossier_id = dossier_id_for(command.request_id)
        with bind(area=area, unit=unit.slug):
            refs = self._store_documents(dossier_id, command.documents, uploaded)
            # As the store keeps it (UTC, milliseconds), so the events, the work message and every later
            # read tell the same time.
            now = utc_ms(self._clock())
            sequence = self._uows.store.next_value(code_counter(unit.unit_id, now))
            dossier = Dossier(
                id=dossier_id, request_id=command.request_id, fingerprint=command.fingerprint,
                code=dossier_code(unit.unit_id, now, sequence),
                procedure_code=procedure.code, procedure_version=procedure.version, receiving_unit=unit.slug, area=area,
                unit_id=unit.unit_id, applicant=vars(command.applicant), documents=refs, received_at=None,
                status=Status.SUBMITTED, channel=command.channel.value, submitted_at=now,
            )
            lifecycle.record(dossier, "submitted", now, command.request_id)
            trace = command.traceparent or new_traceparent()
            if lifecycle.initial_status(command.channel) is Status.RECEIVED:
                messages = self._receive(dossier, procedure, now, "Bộ phận Một cửa", "", trace)
            else:
                messages = [events.dossier_submitted(dossier, trace)]
            lifecycle.remember_answer(dossier, command.request_id, command.fingerprint, version=1)  # insert's
            uow.add(self._dossiers, self._records.to_document(dossier), messages)
            (stored,) = uow.commit()
            with bind(dossier_code=dossier.code):
                log.info("dossier submitted", extra={"documents": len(refs), "channel": dossier.channel})
            return self._records.from_document(stored)

    def accept(self, request_id: str, code: str, official: str, traceparent: str | None = None,
               fingerprint: str = "") -> Dossier:
        """The desk accepts an online or postal dossier (1 → 2): appointment, receipt, routing."""
        check_request_id(request_id)
        if not official.strip():
            raise InvalidArgument("official", "is required: who accepts the dossier")

        def change(dossier: Dossier, now: datetime, trace: str) -> list:
            lifecycle.check_allowed("accept", dossier)
            procedure = self._catalog.procedure_version(dossier.procedure_code, dossier.procedure_version or 1)
            return self._receive(dossier, procedure, now, official.strip(), request_id, trace)

        return self._change(code, request_id, change, traceparent, fingerprint)

    def refuse(self, request_id: str, code: str, official: str, reasons: list[str],
               traceparent: str | None = None, fingerprint: str = "") -> Dossier:
        """The desk refuses an online or postal dossier (1 → 3) with reasons; form 03 follows."""
        check_request_id(request_id)
        if not official.strip():
            raise InvalidArgument("official", "is required: who refuses the dossier")

        def change(dossier: Dossier, now: datetime, trace: str) -> list:
            lifecycle.check_allowed("refuse", dossier)
            lifecycle.refuse(dossier, at=now, reasons=reasons, official=official.strip(), request_id=request_id)
            return [events.dossier_refused(dossier, trace), events.render_form(dossier, "03", trace)]

        return self._change(code, request_id, change, traceparent, fingerprint)

    def withdraw(self, request_id: str, code: str, reason: str, identity_number: str,
                 traceparent: str | None = None, fingerprint: str = "") -> Dossier:
        """Withdrawal at the applicant's request (→ 7), from the statuses that allow it."""
        check_request_id(request_id)
        if not reason.strip():
            raise InvalidArgument("reason", "is required: why the applicant withdraws")

        def change(dossier: Dossier, now: datetime, trace: str) -> list:
            lifecycle.check_allowed("withdraw", dossier)
            lifecycle.withdraw(dossier, at=now, reason=reason, identity_number=identity_number,
                               request_id=request_id)
            return [events.dossier_withdrawn(dossier, trace)]

        return self._change(code, request_id, change, traceparent, fingerprint)

    def supplement(self, command: SupplementDossier) -> Dossier:
        """The applicant supplements (5 → 4): the new documents are checked against the procedure
        version and stored, the appointment moves by the procedure's policy (the old one is kept)
        and routing hears of it through ``dossier.supplemented``."""
        check_request_id(command.request_id)

        def change(dossier: Dossier, now: datetime, trace: str) -> list:
            lifecycle.check_allowed("supplement", dossier)
            procedure = self._procedure_of(dossier)
            uploaded = self.uploads.resolve(command.uploaded)
            check_documents(command.documents, procedure, self._limits, uploaded, complete=False,
                            stored_bytes=sum(d.size for d in dossier.documents))
            added = self._store_documents(dossier.id, command.documents, uploaded)
            dossier.documents.extend(added)
            due_at = lifecycle.supplemented_due_date(self._calendar, procedure, dossier, now)
            lifecycle.supplement(dossier, at=now, due_at=due_at, request_id=command.request_id)
            return [events.dossier_supplemented(dossier, added, trace)]

        return self._change(command.code, command.request_id, change, command.traceparent, command.fingerprint)

    def record_supplement_request(self, code: str, reason: str, requested_by: str, at: datetime,
                                  deadline: datetime | None, event_id: str) -> None:
        """Routing asked the applicant for a supplement (its public event): status 5 here too, with
        the reason, the deadline and who asked; idempotent by event."""
        self._follow(code, event_id, lambda dossier: lifecycle.request_supplement(
            dossier, at=at, reason=reason, requested_by=requested_by, deadline=deadline, event_id=event_id))

    def track(self, code: str) -> tuple[Dossier, str]:
        """Public progress: the dossier and its procedure's name (callers show no personal data)."""
        if not code:
            raise InvalidArgument("code", "is required")
        dossier = self.get(code=code)
        return dossier, self._procedure_of(dossier).name

    def follow_progress(self, code: str, status: Status, action: str, at: datetime, event_id: str) -> bool:
        """Mirror routing's progress (from its public events) for tracking; idempotent by event.
        Whether it changed the dossier."""
        return self._follow(code, event_id,
                            lambda dossier: lifecycle.mirror_progress(dossier, status, action, at, event_id))

    def follow_change(self, code: str, event_name: str, action: str, at: datetime, event_id: str) -> None:
        """Mirror routing's stop (8) and payment (6 and back to 4) for tracking; idempotent by event."""
        self._follow(code, event_id, lambda dossier: lifecycle.mirror_change(dossier, event_name, action, at, event_id))

    def _follow(self, code: str, event_id: str, apply: Callable[[Dossier], bool]) -> bool:
        """Apply another service's event to the dossier once; ``apply`` says whether it changed.
        Whether it changed the dossier (and wrote it)."""
        def follow(uow: UnitOfWork) -> bool:
            doc = self._find_code(code)
            if doc is None:
                return False  # not a dossier of ours (another intake's, or a test's)
            dossier = self._records.from_document(doc)
            if lifecycle.handled(dossier, event_id=event_id) or not apply(dossier):
                return False
            uow.save(self._dossiers, {**doc, **self._records.to_document(dossier)})
            # The event's one write (nothing follows it): its processed record rides with it.
            uow.commit(completes_message=True)
            return True
        return self._uows.run(follow, what=f"following routing's events on dossier {code}")

    def _receive(self, dossier: Dossier, procedure, now: datetime, official: str, request_id: str,
                 trace: str) -> list:
        channel = Channel(dossier.channel)
        lifecycle.receive(dossier, at=now, due_at=lifecycle.due_date(self._calendar, procedure, now, channel),
                          official=official, request_id=request_id)
        process = process_definition(self._catalog, procedure, self._catalog.unit(dossier.receiving_unit),
                                     online=channel is Channel.ONLINE)
        return [events.dossier_received(dossier, trace, procedure),
                events.route_dossier(dossier, process, trace, procedure.name),
                events.render_form(dossier, "01", trace)]

    def _change(self, code: str, request_id: str, change, traceparent: str | None, fingerprint: str = "") -> Dossier:
        """Apply a desk or applicant action once: a retried request returns the first answer (the
        dossier as the action left it, kept in its history row); the same request id with another
        payload (``fingerprint``, of the whole request) is refused."""
        if not code:
            raise InvalidArgument("code", "is required")

        def act(uow: UnitOfWork) -> Dossier:
            doc = self._find_code(code)
            if doc is None:
                raise NotFound(f"no dossier {quote(code)}")
            dossier = self._records.from_document(doc)
            require_area(dossier.area)  # the calling agency's access list
            if lifecycle.handled(dossier, request_id=request_id):
                if fingerprint and lifecycle.fingerprint_of(dossier, request_id) not in ("", fingerprint):
                    raise AlreadyExists(f"request_id {quote(request_id)} was already used for a different request on "
                                        f"dossier {code}; use a new request id")
                return lifecycle.first_answer(dossier, request_id)
            now = utc_ms(self._clock())
            trace = traceparent or new_traceparent()
            with bind(dossier_code=dossier.code, area=dossier.area):
                messages = change(dossier, now, trace)
                # What the write below stores (at the next version) is what a retry will be answered.
                lifecycle.remember_answer(dossier, request_id, fingerprint, version=doc["version"] + 1)
                uow.save(self._dossiers, {**doc, **self._records.to_document(dossier)}, messages)
                (stored,) = uow.commit()
                log.info("dossier changed", extra={"action": dossier.history[-1]["action"]})
                return self._records.from_document(stored)
        return self._uows.run(act, what=f"changing dossier {code}")

    def _find_code(self, code: str) -> dict | None:
        found = self._dossiers.find({"code": code}, limit=1)
        return found[0] if found else None

    def get(self, dossier_id: str = "", code: str = "") -> Dossier:
        if not dossier_id and not code:
            raise InvalidArgument("dossier_id", "give the dossier id or its code")
        doc = self._dossiers.get(dossier_id) if dossier_id else self._find_code(code)
        if doc is None:
            raise NotFound(f"no dossier {quote(dossier_id or code)}")
        return self._records.from_document(doc)

    def _by_request_id(self, request_id: str) -> dict | None:
        found = self._dossiers.find({"request_id": request_id}, limit=1)
        return found[0] if found else None

    def _repeat(self, existing: dict, command: SubmitDossier) -> Dossier:
        if existing["fingerprint"] != command.fingerprint:
            raise AlreadyExists(f"request_id {quote(command.request_id)} was already used for a different "
                                "submission; use a new request id")
        # Nothing is published here: the first call may still be publishing what it wrote, and
        # what a crash left pending is the relay's (after MOTCUA_OUTBOX_GRACE_S).
        return lifecycle.first_answer(self._records.from_document(existing), command.request_id)

    def _procedure_of(self, dossier: Dossier) -> Procedure:
        """The procedure version the dossier was received under."""
        return self._catalog.procedure_version(dossier.procedure_code, dossier.procedure_version or 1)

    def _store_documents(self, dossier_id: str, documents: list[IncomingDocument],
                         uploaded: list[ResolvedDocument]) -> list[DocumentRef]:
        """Inline documents go to object storage under the dossier; uploaded ones are there already
        (content-addressed, verified while streaming) and are referred to where they are."""
        refs = []
        for document in documents:
            ref = self._objects.put_bytes(f"{OBJECT_PREFIX}/{dossier_id}", document.content, document.media_type)
            refs.append(DocumentRef(key=ref.key, sha256=ref.sha256, size=ref.size, media_type=ref.media_type,
                                    name=document.name, component=document.component))
        refs += [DocumentRef(key=u.key, sha256=u.sha256, size=u.size, media_type=u.media_type, name=u.name,
                             component=u.component) for u in uploaded]
        return refs
