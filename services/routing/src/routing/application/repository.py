"""Loading and writing workflow instances: the one write every use case of routing ends with.

Every change is ONE version-checked write of the instance's document carrying, in its outbox, the
messages of what happened: the public events of its facts and the work they ask of other
services (a draft to sign). Right after the write, the writer publishes the messages *it* added
and removes them; entries another writer added (pending when this one read the instance, and
stored back with it) are that writer's to publish, and the worker's relay publishes what a crash
left (:mod:`motcua.messaging.outbox`). So an official acting the moment the worker applied
signing's report publishes its own events only, never the report's again. A stale write raises
VersionConflict and stores nothing; the caller decides whether to report it (an official:
ABORTED) or to read again and retry (a system message).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from motcua.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, quote
from motcua.messaging.outbox import Outbox, add_messages, message_ids
from motcua.store.port import Collection, DuplicateKey, Store, VersionConflict
from motcua.worktime import Calendar
from routing.adapters.instances import InstanceRecord, StoredInstance, from_document, to_document
from routing.application.instance_events import messages_of
from routing.domain import fields
from routing.domain.actions import Actor, Command
from routing.domain.instance import WorkflowInstance
from routing.domain.process import ProcessDefinition
from routing.domain.sla import DEFAULT_SOON_HOURS

log = logging.getLogger(__name__)

SYSTEM_RETRIES = 8  # a system message that keeps meeting officials' writes reads again this often


class Instances:
    def __init__(self, store: Store, outbox: Outbox, calendar: Calendar,
                 clock: Callable[[], dt.datetime], soon_hours: Decimal | int = DEFAULT_SOON_HOURS):
        self.collection: Collection = store.collection(InstanceRecord)
        self._outbox = outbox
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
        return from_document(doc, self.calendar)

    # -- writing --------------------------------------------------------------------------------

    def open(self, body: Mapping[str, Any], traceparent: str | None = None) -> StoredInstance:
        """Open the instance of an accepted dossier from intake's ``routing.route_dossier`` body
        (``dossier_id, code, receiving_unit, area, procedure_code, received_at, due_at, process``
        and, when intake sends them, ``channel, documents``); a repeated body answers with the stored
        instance and opens nothing (nor publishes: what the first write left is the relay's)."""
        body = fields.mapping(body, "body")
        dossier_id = fields.text(body, "dossier_id", "dossier_id")
        if (doc := self.collection.get(dossier_id)) is not None:
            return self.settled(doc)
        now = self.clock()
        instance = WorkflowInstance.open(
            definition=ProcessDefinition.from_dict(body.get("process")), dossier_id=dossier_id,
            code=body.get("code"), receiving_unit=body.get("receiving_unit"), area=body.get("area"),
            procedure_code=body.get("procedure_code"),
            received_at=body.get("received_at"), due_at=body.get("due_at"), now=now, calendar=self.calendar,
            request_id=f"open:{dossier_id}", channel=body.get("channel") or "desk",
            documents=body.get("documents") or [])
        messages = messages_of(instance, traceparent)
        doc = add_messages({**to_document(instance, now, self.soon_hours), "revision": 1}, messages)
        try:
            stored = self.collection.insert(doc)
        except DuplicateKey:
            existing = self.collection.get(dossier_id)
            if existing is None:  # the code is taken by another dossier
                raise AlreadyExists(f"dossier code {instance.code} already belongs to another dossier") from None
            return self.settled(existing)
        log.info("workflow instance opened", extra={"dossier_code": instance.code})
        return self.published(stored, message_ids(messages))

    def save(self, stored: StoredInstance, now: dt.datetime, traceparent: str | None = None,
             changes: Mapping[str, Any] | None = None) -> StoredInstance:
        """Write ``stored.instance`` as changed (its facts become the outbox) over the version it was
        read at; raises VersionConflict when someone wrote it meanwhile (nothing is stored)."""
        instance = stored.instance
        fields_ = to_document(instance, now, self.soon_hours)
        changed = fields_["instance"] != stored.doc["instance"]
        messages = messages_of(instance, traceparent)
        doc = add_messages({**stored.doc, **fields_, "revision": stored.version + changed, **(changes or {})},
                           messages)
        written = self.collection.replace(doc, stored.doc["version"])
        return self.published(written, message_ids(messages))

    def act_as_system(self, dossier_id: str, command: Command, by: Actor, request_id: str,
                      traceparent: str | None = None) -> bool:
        """Apply a system's report (signing's result, intake's supplement or withdrawal) once: a
        write that meets an official's is read again and retried. False when it changed nothing
        (reported before). NotFound while the instance is not open yet (the message is retried)."""
        for _ in range(SYSTEM_RETRIES):
            stored = self.get(dossier_id=dossier_id)
            now = self.clock()
            if not stored.instance.apply(command, by=by, now=now, request_id=request_id):
                return False  # a redelivered report: its first write published (or the relay will)
            try:
                self.save(stored, now, traceparent)
            except VersionConflict:
                continue  # an official acted meanwhile: apply to what they left
            return True
        raise Conflict(f"dossier {dossier_id} kept changing while {by.label} reported {command.action}")

    def settled(self, doc: dict[str, Any]) -> StoredInstance:
        """The stored instance as read, for an answer that writes nothing (a repeated request or
        body). Whatever its outbox still holds is not published here: those entries belong to the
        write that added them, which publishes them, or to the relay after a crash."""
        return self.loaded(doc)

    def published(self, written: dict[str, Any], ids: list[str]) -> StoredInstance:
        """Publish the messages ``ids`` this write added (only those: other entries of ``written``
        are other writers') and answer with the version removing them gave (the one the caller's
        next expected_version must name), unless someone changed it since."""
        self._outbox.flush(self.collection, written, ids)
        now = self.collection.get(written["_id"])
        if now is not None and now["instance"] == written["instance"]:
            written = now
        return self.loaded(written)
