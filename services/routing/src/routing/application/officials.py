"""Officials' use cases on workflow instances: their task lists, a dossier's timeline, their
actions.

Every change is ONE version-checked write (:mod:`routing.application.repository`). Two officials
acting on the same dossier at once: one write wins, the other gets Conflict (ABORTED) and nothing
of its action is stored. Actions are idempotent by request id: the timeline row of a request
remembers it, and a retry publishes nothing (see below for its answer). Approving at a
sign step renders the draft result, stores it (before the write that refers to it) and sends it
to the signing service in the same write's outbox.

An action is answered with the dossier's :class:`Timeline` as the action left it. Its timeline row
keeps that answer (small: the number of rows, the status, the appointments, the revision) and the
fingerprint of the whole request: a retry with the same request id and payload gets the first
answer whatever happened since, and the same id with another payload is AlreadyExists.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from motcua.errors import Conflict, FailedPrecondition, InvalidArgument, quote
from motcua.messagebus import MessageBus
from motcua.unit_of_work import UnitOfWork
from routing.application import paging
from routing.application.repository import Instances, StoredInstance
from routing.domain import fields
from routing.domain.actions import (
    Action,
    Approve,
    Command,
    Official,
    Refuse,
    RequestSupplement,
    parse,
)
from routing.domain.instance import TimelineRow, WorkflowInstance
from routing.domain.process import ProcessDefinition, working_minutes
from routing.domain.status import Status

# Render and store the draft result an official approves, the notice of a refusal, form 02 of a
# supplement request (given the request and the official's id): document references. The forms (not
# the draft, which signing signs and seals) come back sealed by the receiving unit; sealing failing
# raises (Unavailable: the call fails, nothing is written). Form 05 of a returned dossier is not
# made here: routing's worker issues it after the return (routing.application.systems).
Drafts = Callable[[WorkflowInstance, dt.datetime], dict[str, Any]]
Notices = Callable[[WorkflowInstance, str, dt.datetime], dict[str, Any]]
SupplementForms = Callable[[WorkflowInstance, RequestSupplement, str, dt.datetime], dict[str, Any]]

log = logging.getLogger(__name__)

# Statuses in which the active step is an official's task (under 5 the applicant holds the dossier).
TASK_STATUSES = [int(Status.PROCESSING), int(Status.PAYMENT_REQUESTED), int(Status.RESULT_READY)]
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


class TaskFilter(StrEnum):
    OPEN = "open"  # every task
    DUE_SOON = "due_soon"  # the step deadline is within the due-soon window of working hours
    OVERDUE = "overdue"  # the step deadline has passed


@dataclass(frozen=True)
class Timeline:
    """A dossier's timeline as officials see it (GetTimeline, and the answer to an action)."""

    code: str
    status: Status
    due_at: dt.datetime  # the appointment the applicant holds
    previous_due_at: tuple[dt.datetime, ...]  # moved by supplements, then by apologies
    rows: tuple[TimelineRow, ...]
    version: int  # the revision: what the next action names as expected_version

    @classmethod
    def of(cls, instance: WorkflowInstance, version: int) -> Timeline:
        return cls(instance.code, instance.status, instance.promised_due_at,
                   (*instance.previous_due_at, *(a.previous_due_at for a in instance.apologies)),
                   tuple(instance.timeline), version)

    @classmethod
    def answered(cls, stored: StoredInstance, request_id: str) -> Timeline:
        """The answer the action of ``request_id`` was given (kept in its row); the timeline as it is
        now for a row that kept none (written before rows did)."""
        row = stored.instance.row_for(request_id)
        kept = row.answer if row is not None else None
        if not kept:
            return cls.of(stored.instance, stored.version)
        return cls(stored.instance.code, Status(kept["status"]), fields.instant(kept["due_at"], "due_at"),
                   tuple(fields.instant(d, "previous_due_at") for d in kept["previous_due_at"]),
                   tuple(stored.instance.timeline[:kept["rows"]]), kept["version"])

    def to_answer(self) -> dict[str, Any]:
        """What a row keeps of it (the rows only grow: their number is enough)."""
        return {"status": int(self.status), "due_at": self.due_at, "previous_due_at": list(self.previous_due_at),
                "rows": len(self.rows), "version": self.version}


@dataclass(frozen=True)
class TaskPage:
    tasks: list[StoredInstance]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True)
class ActOnDossier:
    """One official's action on a dossier (RoutingService.Act), with the revision they saw."""

    request_id: str
    code: str
    official: Official
    action: str
    expected_version: int = 0
    fields: Mapping[str, Any] | None = None
    traceparent: str | None = None
    fingerprint: str = ""


class Officials:
    def __init__(self, instances: Instances, drafts: Drafts | None = None, notices: Notices | None = None,
                 supplement_forms: SupplementForms | None = None):
        self._instances = instances
        self._notices = notices
        self._supplement_forms = supplement_forms
        self._calendar = instances.calendar
        self._clock = instances.clock
        self._soon_hours = instances.soon_hours
        self._drafts = drafts

    # -- opening --------------------------------------------------------------------------------

    def open(self, body: Mapping[str, Any], traceparent: str | None = None) -> StoredInstance:
        """Open an accepted dossier's instance (what the worker does with ``routing.route_dossier``)."""
        return self._instances.open(body, traceparent)

    # -- questions ------------------------------------------------------------------------------

    def get(self, dossier_id: str = "", code: str = "") -> StoredInstance:
        """An instance by id or by code (NotFound when there is none)."""
        return self._instances.get(dossier_id=dossier_id, code=code)

    def timeline(self, dossier_id: str = "", code: str = "") -> StoredInstance:
        return self.get(dossier_id=dossier_id, code=code)

    def list_tasks(self, unit: str = "", official_id: str = "", filter: TaskFilter | str = TaskFilter.OPEN,
                   procedure_code: str = "", page_size: int = 0, page_token: str = "") -> TaskPage:
        """The active steps of a unit (or those an official claimed), earliest step deadline first,
        one page at a time; ``page_token`` is the previous page's ``next_page_token``."""
        if bool(unit) == bool(official_id):
            raise InvalidArgument("unit", "give either a unit or an official id")
        which = fields.choice(filter or TaskFilter.OPEN, TaskFilter, "filter")
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        query: dict[str, Any] = {"current_unit": unit} if unit else {"claimed_by": official_id}
        query["status"] = {"$in": TASK_STATUSES}
        if procedure_code:
            query["procedure_code"] = procedure_code
        deadline: dict[str, Any] = {}
        now = self._clock()
        if which is TaskFilter.OVERDUE:
            deadline = {"$lte": now}
        elif which is TaskFilter.DUE_SOON:
            deadline = {"$gt": now,
                        "$lte": self._calendar.add_working_hours(now, working_minutes(Decimal(self._soon_hours)))}
        if deadline:
            query["step_deadline"] = deadline
        docs, token = paging.page(self._instances.collection, query, "step_deadline", size, page_token)
        return TaskPage([self._instances.loaded(d) for d in docs], token)

    # -- actions --------------------------------------------------------------------------------

    def bus(self) -> MessageBus:
        """The handlers of officials' commands (what the api's servicer hands its calls to)."""
        return MessageBus({ActOnDossier: lambda c: self.act(
            c.request_id, c.code, c.official, c.action, expected_version=c.expected_version, fields_=c.fields,
            traceparent=c.traceparent, fingerprint=c.fingerprint)})

    def act(self, request_id: str, code: str, official: Official, action: str, expected_version: int = 0,
            fields_: Mapping[str, Any] | None = None, traceparent: str | None = None,
            fingerprint: str = "") -> Timeline:
        """One official's action. ``expected_version`` (0: unchecked) is the version the official
        saw (the instance's revision, which only changes of the dossier move); a stale one raises
        Conflict, as does a write that meets another action. ``fingerprint`` is the whole request's
        (``motcua.grpcsupport.request_fingerprint``; "" checks the action only). Returns the
        timeline as the action left it, also to a retry."""
        if not isinstance(request_id, str) or not request_id.strip():
            raise InvalidArgument("request_id", "is required")
        if not code:
            raise InvalidArgument("code", "is required")
        if expected_version < 0:
            raise InvalidArgument("expected_version", "must not be negative")
        name = fields.choice(action, Action, "action")
        data = dict(fields.mapping(fields_ or {}, "fields"))
        first_seen: list[int] = []

        def attempt(uow: UnitOfWork) -> Timeline:
            stored = self.get(code=code)
            if first_seen and stored.version != first_seen[0]:
                # Another action changed the dossier since this one was decided: the official
                # must look again. (A write that met only bookkeeping — an outbox cleared, a
                # sweep's claim — is applied again, on the same revision.)
                raise Conflict(f"someone acted first on dossier {quote(code)}; reload and try again")
            first_seen[:] = [stored.version]
            return self._act_once(uow, stored, request_id, official, name, dict(data), expected_version,
                                  traceparent, fingerprint)

        answer = self._instances.run(attempt, what=f"acting on dossier {code}")
        log.info("official acted", extra={"dossier_code": code, "action": str(name), "official": official.id})
        return answer

    def _act_once(self, uow: UnitOfWork, stored: StoredInstance, request_id: str, official: Official, name: Action,
                  data: dict[str, Any], expected_version: int, traceparent: str | None,
                  fingerprint: str) -> Timeline:
        instance, code = stored.instance, stored.instance.code
        if name is Action.FORWARD and "unit_id" not in data and isinstance(data.get("unit"), str):
            if not (unit_id := known_unit_id(instance.definition, data["unit"])):
                raise InvalidArgument("unit", f"{quote(data['unit'])} (target_unit) is not a unit this procedure's "
                                              "process knows; its electronic identifier is unknown")
            data["unit_id"] = unit_id
        command = parse(name, data)
        now = self._clock()
        seen = instance.row_for(request_id)
        if seen is None and expected_version and expected_version != stored.version:
            raise Conflict(f"dossier {code} is at version {stored.version}, not {expected_version}: someone acted "
                           "first; reload and try again")
        if seen is None:
            command = self._with_documents(instance, command, official, now)
        if not instance.apply(command, by=official, now=now, request_id=request_id, fingerprint=fingerprint):
            settled = self._instances.settled(stored.doc)
            if seen is not None:
                return Timeline.answered(settled, request_id)  # a retry: the first answer
            return Timeline.of(settled.instance, settled.version)  # nothing to change (claimed already)
        # The write below adds a row, so it moves the revision by one: that is the answer, kept.
        answer = Timeline.of(instance, stored.version + 1)
        instance.remember_answer(request_id, fingerprint, answer.to_answer())
        self._instances.stage(uow, stored, now, traceparent)
        uow.commit()
        return answer

    def _with_documents(self, instance: WorkflowInstance, command: Command, official: Official,
                        now: dt.datetime) -> Command:
        """Render and store what an action hands over — the draft an approval sends to signing, the
        notice a refusal gives the applicant — before the write that refers to it, and only once
        the action is known to be allowed (a refused call stores nothing)."""
        if isinstance(command, Approve) and not command.draft:
            instance.authorize(command.action, official)
            return replace(command, draft=self._renderer(self._drafts, command, instance)(instance, now))
        if isinstance(command, RequestSupplement) and not command.form:
            instance.authorize(command.action, official)
            form = self._renderer(self._supplement_forms, command, instance)(instance, command, official.id, now)
            return replace(command, form=form)
        if isinstance(command, Refuse) and not command.notice:
            instance.authorize(command.action, official)
            notice = self._renderer(self._notices, command, instance)(instance, command.reason, now)
            return replace(command, notice=notice)
        return command

    @staticmethod
    def _renderer(renderer: Callable | None, command: Command, instance: WorkflowInstance) -> Callable:
        if renderer is None:
            raise FailedPrecondition(f"cannot {command.action} dossier {instance.code}: this routing process has "
                                     "no document renderer (object storage) configured")
        return renderer


def known_unit_id(definition: ProcessDefinition, unit: str) -> str:
    """The electronic identifier of a unit the process names (a step's unit or a transfer target);
    "" when it names none (the forward is then refused: ``unit_id`` is required)."""
    known = [(s.unit, s.unit_id) for s in definition.steps] + [(t.unit, t.unit_id) for t in definition.transfer_targets]
    return next((unit_id for slug, unit_id in known if slug == unit.strip()), "")
