"""Loading and writing workflow instances: the one write every use case of routing ends with.

Every change is ONE version-checked write of the instance's document carrying, in its outbox, the
messages of what happened: the public events of its facts and the work they ask of other
services (a draft to sign). The write is a unit of work (:mod:`motcua.unit_of_work`): right after
it, the writer publishes the messages *it* added and removes them; entries another writer added
are that writer's to publish, and the worker's relay publishes what a crash left. So an official
acting the moment the worker applied signing's report publishes its own events only, never the
report's again. A stale write raises VersionConflict and stores nothing; :meth:`Instances.run`
reads again and retries (a system's report, an official's action that met only bookkeeping).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from motcua.errors import AlreadyExists, InvalidArgument, NotFound, quote
from motcua.store.port import Collection, Mapper
from motcua.unit_of_work import UnitOfWork, UnitsOfWork
from motcua.worktime import Calendar
from routing.application.instance_events import messages_of
from routing.domain import fields
from routing.domain.actions import Actor, Command
from routing.domain.instance import WorkflowInstance
from routing.domain.process import ProcessDefinition
from routing.domain.sla import DEFAULT_SOON_HOURS

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class StoredInstance:
    """An instance as loaded, with the stored document (its store version and outbox).

    ``version`` is the instance's *revision*: it counts the changes of the dossier, and is what
    officials name as ``expected_version``. The store's own ``version`` (the compare-and-set of
    every write) also moves when the outbox is cleared or a sweep claims the document; naming it
    would make an official's action fail for bookkeeping nobody sees."""

    instance: WorkflowInstance
    doc: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.doc.get("revision") or 1)


class Instances:
    """The repository of workflow instances: loads and stages them in units of work. How an
    instance is stored (``records``: ``routing.adapters.instances.INSTANCES``) is injected."""

    def __init__(self, uows: UnitsOfWork, calendar: Calendar,
                 clock: Callable[[], dt.datetime], soon_hours: Decimal | int = DEFAULT_SOON_HOURS, *,
                 records: Mapper):
        self._uows = uows
        self._records = records
        self.collection: Collection = uows.store.collection(records.schema)
        self.calendar = calendar
        self.clock = clock
        self.soon_hours = soon_hours

    # -- reading --------------------------------------------------------------------------------

    def get(self, dossier_id: str = "", code: str = "") -> StoredInstance:
        """An instance by id or by code (NotFound when there is none)."""
        if dossier_id:
            doc = self.collection.get(dossier_id)
            if doc is not None and code and doc["code"] != code:
                doc = None
        elif code:
            found = self.collection.find({"code": code}, limit=1)
            doc = found[0] if found else None
        else:
            raise InvalidArgument("dossier_id", "give the dossier id or its code")
        if doc is None:
            raise NotFound(f"no workflow for dossier {quote(code or dossier_id)}")
        return self.loaded(doc)

    def loaded(self, doc: dict[str, Any]) -> StoredInstance:
        return StoredInstance(self._records.from_document(doc, self.calendar), doc)

    # -- writing --------------------------------------------------------------------------------

    def run(self, use_case: Callable[[UnitOfWork], T], what: str) -> T:
        """``use_case`` in a unit of work, again on what another writer left when its write met
        theirs (:meth:`motcua.unit_of_work.UnitsOfWork.run`)."""
        return self._uows.run(use_case, what=what)

    def open(self, body: Mapping[str, Any], traceparent: str | None = None) -> StoredInstance:
        """Open the instance of an accepted dossier from intake's ``routing.route_dossier`` body
        (``dossier_id, code, receiving_unit, area, procedure_code, received_at, due_at, process``
        and, when intake sends them, ``channel, documents``); a repeated body answers with the stored
        instance and opens nothing (nor publishes: what the first write left is the relay's)."""
        body = fields.mapping(body, "body")
        dossier_id = fields.text(body, "dossier_id", "dossier_id")
        return self.run(lambda uow: self._open(uow, dossier_id, body, traceparent), what=f"opening {dossier_id}")

    def _open(self, uow: UnitOfWork, dossier_id: str, body: Mapping[str, Any],
              traceparent: str | None) -> StoredInstance:
        if (doc := self.collection.get(dossier_id)) is not None:
            return self.settled(doc)
        now = self.clock()
        instance = WorkflowInstance.open(
            definition=ProcessDefinition.from_dict(body.get("process")), dossier_id=dossier_id,
            code=body.get("code"), receiving_unit=body.get("receiving_unit"), area=body.get("area"),
            procedure_code=body.get("procedure_code"),
            received_at=body.get("received_at"), due_at=body.get("due_at"), now=now, calendar=self.calendar,
            request_id=f"open:{dossier_id}", channel=body.get("channel") or "desk",
            documents=body.get("documents") or [], applicant=body.get("applicant") or {},
            procedure_name=body.get("procedure_name") or "")
        if self.collection.find({"code": instance.code}, limit=1):
            raise AlreadyExists(f"dossier code {quote(instance.code)} already belongs to another dossier")
        uow.add(self.collection, {**self._records.to_document(instance, now, self.soon_hours), "revision": 1},
                messages_of(instance, traceparent))
        # The one write route_dossier needs: its processed-message record rides in this commit
        # (the outbox publishes the events; nothing after this needs the message again).
        (stored,) = uow.commit(completes_message=True)
        log.info("workflow instance opened", extra={"dossier_code": instance.code})
        return self._answer(stored)

    def stage(self, uow: UnitOfWork, stored: StoredInstance, now: dt.datetime, traceparent: str | None = None,
              changes: Mapping[str, Any] | None = None) -> None:
        """Stage ``stored.instance`` as changed (its facts become the outbox) over the version it was
        read at; the unit of work's commit raises VersionConflict when someone wrote it meanwhile."""
        instance = stored.instance
        fields_ = self._records.to_document(instance, now, self.soon_hours)
        changed = fields_["instance"] != stored.doc["instance"]
        uow.save(self.collection, {**stored.doc, **fields_, "revision": stored.version + changed, **(changes or {})},
                 messages_of(instance, traceparent))

    def save(self, stored: StoredInstance, now: dt.datetime, traceparent: str | None = None,
             changes: Mapping[str, Any] | None = None) -> StoredInstance:
        """Write ``stored.instance`` as changed, once (a sweep that loses to an official leaves the
        dossier for its next look); raises VersionConflict when someone wrote it meanwhile."""
        uow = self._uows.start()
        self.stage(uow, stored, now, traceparent, changes)
        (written,) = uow.commit()
        return self._answer(written)

    def act_as_system(self, dossier_id: str, command: Command, by: Actor, request_id: str,
                      traceparent: str | None = None) -> bool:
        """Apply a system's report (signing's result, intake's supplement or withdrawal) once: a
        write that meets an official's is read again and retried. False when it changed nothing
        (reported before). NotFound while the instance is not open yet (the message is retried)."""
        def report(uow: UnitOfWork) -> bool:
            stored = self.get(dossier_id=dossier_id)
            now = self.clock()
            if not stored.instance.apply(command, by=by, now=now, request_id=request_id):
                return False  # a redelivered report: its first write published (or the relay will)
            self.stage(uow, stored, now, traceparent)
            uow.commit(completes_message=True)  # the report's one write: its record rides along
            return True
        return self.run(report, what=f"{by.label} reporting {command.action} on {dossier_id}")

    def settled(self, doc: dict[str, Any]) -> StoredInstance:
        """The stored instance as read, for an answer that writes nothing (a repeated request or
        body). Whatever its outbox still holds is not published here: those entries belong to the
        write that added them, which publishes them, or to the relay after a crash."""
        return self.loaded(doc)

    def _answer(self, written: dict[str, Any]) -> StoredInstance:
        """The instance as the write stored it. Not read back: what the caller's next
        expected_version names is the revision, which clearing the outbox after the write does not
        move (the store's own version, which it does move, is read again by the next write's use
        case anyway)."""
        return self.loaded(written)
