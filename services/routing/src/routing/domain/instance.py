"""The workflow instance of one accepted dossier: its steps, deadlines, status and timeline.

One instance per dossier, opened from the process definition intake sent, the reception time and
the appointment (``due_at``). Steps run one at a time, in order; the active step is the one
officials act on (:mod:`routing.domain.actions` says who may do what). Every change goes through
:meth:`WorkflowInstance.apply`, which

* answers a repeated request id with ``False`` and changes nothing (a retried call, a message
  delivered twice);
* checks the action against the one table (FailedPrecondition, naming status, step and what is
  allowed), then the official's unit and role (PermissionDenied);
* mutates, appends one timeline row (the national portal's progress row: step, role, actor, unit,
  time, action, note, step deadline, status after) and the domain facts the application turns
  into events (``facts``; the application clears them once they are in the outbox).

Times are stored in the calendar's zone (Asia/Ho_Chi_Minh). The optimistic ``version`` belongs to
the adapter; the domain only mutates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, ClassVar

from motcua.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied, quote
from motcua.worktime import Calendar
from routing.domain import fields
from routing.domain.actions import (
    ALLOWED,
    Action,
    Actor,
    Apologize,
    Approve,
    Claim,
    Command,
    Complete,
    Forward,
    Official,
    RecordPayment,
    Refuse,
    RequestPayment,
    RequestSupplement,
    ReturnPrevious,
    ReturnResult,
    Signed,
    SigningFailed,
    Source,
    SupplementExpired,
    SupplementReceived,
    System,
    Transfer,
    Withdrawn,
    allowed,
)
from routing.domain.process import (
    SIGNING_ROLES,
    Level,
    ProcessDefinition,
    Role,
    SupplementExpiry,
    SupplementPolicy,
    TimeType,
)
from routing.domain.status import Status

OPENED = "opened"  # the timeline row of the instance's creation (not an official's action)
CHANNELS = ("desk", "online", "post")  # intake's channels of submission


class StepState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    SKIPPED = "skipped"  # never done: the dossier was refused, stopped or withdrawn first


class FactKind(StrEnum):
    ASSIGNED = "assigned"
    STEP_COMPLETED = "step_completed"
    FORWARDED = "forwarded"
    TRANSFERRED = "transferred"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    SUPPLEMENTED = "supplemented"
    SUPPLEMENT_EXPIRED = "supplement_expired"  # keep_waiting policy: noted, nothing moves
    PAYMENT_REQUESTED = "payment_requested"
    PAYMENT_RECORDED = "payment_recorded"
    SIGNING_REQUESTED = "signing_requested"
    SIGNING_FAILED = "signing_failed"
    RESULT_READY = "result_ready"
    RETURNED = "returned"
    REFUSED = "refused"  # status 8, by an official or by the supplement deadline (data "cause")
    WITHDRAWN = "withdrawn"
    APOLOGY_ISSUED = "apology_issued"  # form 04
    DUE_SOON = "due_soon"  # the SLA sweep: a step or the dossier is within the warning window
    OVERDUE = "overdue"  # the SLA sweep: a step's deadline or the appointment has passed
    CONTROL_SLIP_ISSUED = "control_slip_issued"  # form 05 of a returned dossier, by routing's worker


# -- records kept in the instance -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as plain JSON: times as ISO 8601, enums as their value."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Record:
    """to_dict/from_dict for the instance's small records; ``_instants`` names the time fields."""

    _instants: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: fields.optional_instant(v, k) if k in cls._instants else v
                      for k, v in data.items() if k in names})


@dataclass
class WorkflowStep(_Record):
    index: int
    role: Role
    unit: str  # slug; forward and transfer change it
    unit_id: str
    level: Level
    deadline: dt.datetime
    name: str = ""
    forward: bool = False
    state: StepState = StepState.PENDING
    actor: str = ""  # the official who claimed or did it
    started_at: dt.datetime | None = None
    done_at: dt.datetime | None = None

    _instants = frozenset({"deadline", "started_at", "done_at"})

    def __post_init__(self) -> None:
        self.role, self.level, self.state = Role(self.role), Level(self.level), StepState(self.state)

    @property
    def title(self) -> str:
        return self.name or self.role.value

    def describe(self) -> str:
        return f"step {self.index} '{self.title}' ({self.role.value} at {self.unit})"


@dataclass(frozen=True)
class TimelineRow(_Record):
    """One history row (DOMAIN.md: step, actor, unit, time, action, note, step deadline) plus the
    status after it and the request id that caused it (idempotency): for an official's request,
    also the fingerprint of its payload and what its caller was answered (the application's
    snapshot, kept so that a retry gets that first answer; see :meth:`WorkflowInstance.remember_answer`)."""

    at: dt.datetime
    action: str
    status: Status
    actor: str = ""
    unit: str = ""
    role: str = ""
    step_index: int | None = None
    step_name: str = ""
    step_deadline: dt.datetime | None = None
    note: str = ""
    request_id: str = ""
    fingerprint: str = ""
    answer: dict[str, Any] | None = None

    _instants = frozenset({"at", "step_deadline"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))


@dataclass(frozen=True)
class Fact:
    """Something that happened, for the events the application publishes (not persisted: the
    events are, in the outbox of the same write)."""

    kind: FactKind
    at: dt.datetime
    step_index: int | None = None
    step_name: str = ""
    role: str = ""
    unit: str = ""
    actor: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class HandOver(_Record):
    """The dossier handed from one holder to the next — a step made active, a forward, a transfer,
    a step sent back — which the processing control slip (form 05) lists row by row."""

    at: dt.datetime
    step_index: int
    step_name: str
    to_unit: str
    from_unit: str = ""  # the holder before: the previous hand-over's unit, or the receiving unit
    from_actor: str = ""  # the official who held it there, when one had claimed or done it

    _instants = frozenset({"at"})


@dataclass
class SupplementRequest(_Record):
    reason: str
    deadline: dt.datetime
    requested_at: dt.datetime
    requested_by: str
    step_index: int
    received_at: dt.datetime | None = None
    due_before: dt.datetime | None = None  # the due date when the supplement came in ...
    due_after: dt.datetime | None = None  # ... and after the policy moved it
    expired: bool = False  # the deadline passed (and the keep_waiting policy kept it open)
    components: list[str] = field(default_factory=list)  # what the applicant is asked for
    form: dict[str, Any] | None = None  # form 02 as stored

    _instants = frozenset({"deadline", "requested_at", "received_at", "due_before", "due_after"})


@dataclass
class PaymentRequest(_Record):
    amount: int  # VND
    requested_at: dt.datetime
    requested_by: str
    step_index: int
    note: str = ""
    paid_at: dt.datetime | None = None
    receipt: str = ""
    recorded_by: str = ""

    _instants = frozenset({"requested_at", "paid_at"})


@dataclass
class SigningRound(_Record):
    signing_request_id: str
    step_index: int
    requested_at: dt.datetime
    requested_by: str
    draft: dict[str, Any] = field(default_factory=dict)
    state: str = "pending"  # pending | signed | failed | cancelled
    signers: list[str] = field(default_factory=list)
    reason: str = ""
    # whose seal applies: the unit that issues the result (the seal step's unit in the process
    # definition, else the sign step's); requested_by is the official whose key signs
    seal_unit: str = ""
    seal_unit_id: str = ""

    _instants = frozenset({"requested_at"})


@dataclass
class Apology(_Record):
    """Form 04: an apology with a new appointment (phiếu xin lỗi và hẹn lại ngày trả kết quả)."""

    issued_at: dt.datetime
    previous_due_at: dt.datetime  # the appointment it replaces
    new_due_at: dt.datetime
    reason: str
    form: dict[str, Any] = field(default_factory=dict)  # the rendered form 04 as stored (document reference)

    _instants = frozenset({"issued_at", "previous_due_at", "new_due_at"})


# -- the instance -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class WorkflowInstance:
    dossier_id: str
    code: str
    receiving_unit: str  # the slug of the unit that received the dossier
    procedure_code: str
    definition: ProcessDefinition
    received_at: dt.datetime
    due_at: dt.datetime  # the appointment; supplements under a policy move it (old ones kept)
    steps: list[WorkflowStep]
    calendar: Calendar = field(repr=False, compare=False)
    channel: str = "desk"  # intake's channel of submission (desk, online, post): the 766 indicators count it
    # The area the dossier is worked in (``motcua.areas``): the receiving unit's district-level unit,
    # or the province. Its queues, events, sweeps and statistics are keyed by it.
    area: str = ""
    documents: list[dict[str, Any]] = field(default_factory=list)  # the dossier's documents (received, supplemented)
    status: Status = Status.PROCESSING
    timeline: list[TimelineRow] = field(default_factory=list)
    previous_due_at: list[dt.datetime] = field(default_factory=list)
    supplements: list[SupplementRequest] = field(default_factory=list)
    payments: list[PaymentRequest] = field(default_factory=list)
    signings: list[SigningRound] = field(default_factory=list)
    apologies: list[Apology] = field(default_factory=list)
    result: dict[str, Any] | None = None  # the signed result's document reference
    reason: str = ""  # why it was refused, stopped or withdrawn
    notice: dict[str, Any] | None = None  # the stop notice to the applicant (status 8), as stored
    finished_at: dt.datetime | None = None  # processing ended: result ready (9) or stopped (8)
    closed_at: dt.datetime | None = None  # reached a terminal status (7, 8, 10)
    returned: dict[str, str] | None = None  # {channel, receiver} of the delivered result
    alerts: list[str] = field(default_factory=list)  # SLA alerts already raised (see raise_alert)
    handovers: list[HandOver] = field(default_factory=list)  # form 05's rows, oldest first
    applicant: dict[str, str] = field(default_factory=dict)  # full_name, address, phone, email (form 06)
    control_slip: dict[str, Any] | None = None  # form 05 as stored once the result was returned
    procedure_name: str = ""
    facts: list[Fact] = field(default_factory=list, compare=False)

    # -- creation -------------------------------------------------------------------------------

    @classmethod
    def open(cls, *, definition: ProcessDefinition, dossier_id: str, code: str, receiving_unit: str,
             procedure_code: str, received_at: dt.datetime, due_at: dt.datetime, now: dt.datetime,
             calendar: Calendar, request_id: str = "", channel: str = "desk", area: str = "",
             documents: list[dict[str, Any]] | tuple = (), applicant: Mapping[str, str] | None = None,
             procedure_name: str = "") -> WorkflowInstance:
        """A new instance in status 4 with its first step active and every step's deadline."""
        data = {"dossier_id": dossier_id, "code": code, "receiving_unit": receiving_unit,
                "procedure_code": procedure_code, "area": area}
        ids = {key: fields.text(data, key, key) for key in data}
        received_at = fields.instant(received_at, "received_at").astimezone(calendar.tz)
        due_at = fields.instant(due_at, "due_at").astimezone(calendar.tz)
        now = fields.instant(now, "now").astimezone(calendar.tz)
        if due_at < calendar.clock_start(received_at):
            raise InvalidArgument("due_at", f"{due_at.isoformat()} is before the clock of a dossier received at "
                                            f"{received_at.isoformat()} starts")
        deadlines = definition.deadlines(received_at, due_at, calendar)
        steps = [WorkflowStep(index=i, role=s.role, unit=s.unit, unit_id=s.unit_id, level=s.level, deadline=d,
                              name=s.name, forward=s.forward)
                 for i, (s, d) in enumerate(zip(definition.steps, deadlines, strict=True))]
        if channel not in CHANNELS:
            raise InvalidArgument("channel", f"{channel!r} is not one of: {', '.join(CHANNELS)}")
        if not isinstance(documents, list | tuple) or not all(isinstance(d, Mapping) for d in documents):
            raise InvalidArgument("documents", "must be a list of document references")
        if applicant is not None and not (isinstance(applicant, Mapping)
                                          and all(isinstance(v, str) for v in applicant.values())):
            raise InvalidArgument("applicant", "must map its fields to text")
        instance = cls(definition=definition, received_at=received_at, due_at=due_at, steps=steps,
                       calendar=calendar, channel=channel, documents=[dict(d) for d in documents],
                       applicant=dict(applicant or {}), procedure_name=str(procedure_name or ""), **ids)
        instance._activate(steps[0], now)
        instance._record(OPENED, None, now, steps[0], note=f"due {due_at.isoformat()}", request_id=request_id)
        return instance

    # -- questions ------------------------------------------------------------------------------

    @property
    def forms(self) -> list[dict[str, Any]]:
        """The forms issued in the dossier's life for its archive: form 05 (once returned), form 02
        of each supplement request, form 04 of each apology."""
        issued = [self.control_slip] if self.control_slip else []
        issued += [s.form for s in self.supplements if s.form]
        return issued + [a.form for a in self.apologies if a.form]

    @property
    def current(self) -> WorkflowStep | None:
        """The active step; None once the dossier is closed."""
        return next((s for s in self.steps if s.state is StepState.ACTIVE), None)

    @property
    def promised_due_at(self) -> dt.datetime:
        """The appointment the applicant holds: the last apology's new date, else the due date.
        Lateness (Decision 766) is still judged against ``due_at``."""
        return self.apologies[-1].new_due_at if self.apologies else self.due_at

    @property
    def pending_signing(self) -> SigningRound | None:
        return next((r for r in self.signings if r.state == "pending"), None)

    @property
    def open_supplement(self) -> SupplementRequest | None:
        if self.status is Status.SUPPLEMENT_REQUESTED and self.supplements:
            return self.supplements[-1]
        return None

    def row_for(self, request_id: str) -> TimelineRow | None:
        return next((r for r in self.timeline if request_id and r.request_id == request_id), None)

    def remember_answer(self, request_id: str, fingerprint: str, answer: Mapping[str, Any]) -> None:
        """Keep in the row of ``request_id`` (just applied) its payload's fingerprint and the answer
        its caller is given: :meth:`apply` refuses the id with another fingerprint, and the
        application answers a retry from the row."""
        index = next((i for i, r in enumerate(self.timeline) if request_id and r.request_id == request_id), None)
        if index is None:
            raise ValueError(f"no timeline row of request {request_id!r} to remember the answer in")
        self.timeline[index] = dataclasses.replace(self.timeline[index], fingerprint=fingerprint,
                                                   answer=_plain(dict(answer)))

    def allowed_actions(self, by: Actor) -> list[Action]:
        """What ``by`` may try now, by the table and their unit and role (a client's menu)."""
        step = self.current
        who = by.source if isinstance(by, System) else (step.role if step else None)
        actions = set(allowed(self.status, who))
        if isinstance(by, Official) and (step is None or by.unit != step.unit or step.role not in by.roles):
            return []
        if step is not None and not step.forward:
            actions -= {Action.FORWARD, Action.TRANSFER}  # the definition forbids them at this step
        return sorted(actions)

    # -- the one way to change it ---------------------------------------------------------------

    def apply(self, command: Command, *, by: Actor, now: dt.datetime, request_id: str = "",
              fingerprint: str = "") -> bool:
        """Apply an action; False when it changed nothing (a repeated request id, a repeated claim,
        a repeated signing report). A repeated request id with another action, or with another
        ``fingerprint`` (of the whole request) than its row kept, is AlreadyExists."""
        now = fields.instant(now, "now").astimezone(self.calendar.tz)
        if request_id and (seen := self.row_for(request_id)) is not None:
            if seen.action != command.action:
                raise AlreadyExists(f"request id {quote(request_id)} was already used for {seen.action} on dossier "
                                    f"{self.code}, not {command.action}; use a new request id")
            if fingerprint and seen.fingerprint not in ("", fingerprint):
                raise AlreadyExists(f"request id {quote(request_id)} was already used for another {seen.action} "
                                    f"request on dossier {self.code}; use a new request id")
            return False
        if self._reported_already(command):
            return False
        step = self.current
        self.authorize(command.action, by)
        assert step is not None  # every allowed action has an active step (the table is empty when closed)
        handler = getattr(self, f"_{command.action.value}")
        return handler(command, by, now, step, request_id)

    def _reported_already(self, command: Command) -> bool:
        """The same fact reported again under another message id (a service re-sent it): whatever
        the status has become since, the answer is "already done", not an error to retry."""
        if isinstance(command, Signed | SigningFailed):
            state = "signed" if isinstance(command, Signed) else "failed"
            return any(r.signing_request_id == command.signing_request_id and r.state == state
                       for r in self.signings)
        return isinstance(command, Withdrawn) and self.status is Status.WITHDRAWN

    def authorize(self, action: Action, by: Actor) -> None:
        """Raise as :meth:`apply` would if ``by`` may not do ``action`` now by the table and their unit
        and role: FailedPrecondition when nobody may, PermissionDenied when someone else may.
        (Checks that need the command's fields, like a transfer target, come after, in apply.)"""
        step = self.current
        who = by.source if isinstance(by, System) else (step.role if step else None)
        if action in allowed(self.status, who):
            if isinstance(by, Official):
                assert step is not None
                self._check_official(action, by, step)
            return
        doers = self._doers(step)
        if any(action in actions for actions in doers.values()):
            who_may = "; ".join(label for label, actions in doers.items() if action in actions)
            raise PermissionDenied(f"{action} on dossier {self.code} is for {who_may}, not {by.label}")
        raise FailedPrecondition(self._not_allowed(action, step, doers))

    def _check_official(self, action: Action, by: Official, step: WorkflowStep) -> None:
        if by.unit != step.unit:
            raise PermissionDenied(f"{by.id} works at {by.unit}, but {step.describe()} of dossier {self.code} "
                                   f"is at {step.unit}")
        if step.role not in by.roles:
            raise PermissionDenied(f"{by.id} does not hold the role {step.role.value} at {step.unit}, which "
                                   f"{step.describe()} of dossier {self.code} needs")
        if action is not Action.CLAIM and step.actor and step.actor != by.id:
            raise PermissionDenied(f"{step.describe()} of dossier {self.code} is claimed by {step.actor}")

    def _doers(self, step: WorkflowStep | None) -> dict[str, frozenset[Action]]:
        """Who may do what now, as labels for messages."""
        out: dict[str, frozenset[Action]] = {}
        for who, actions in ALLOWED[self.status].items():
            if isinstance(who, Source):
                out[f"the {who.value} service" if who is not Source.CLOCK else "the SLA sweep"] = actions
            elif step is not None and who is step.role:
                out[f"officials with role {who.value} at {step.unit}"] = actions
        return out

    def _not_allowed(self, action: Action, step: WorkflowStep | None, doers: dict[str, frozenset[Action]]) -> str:
        where = f" at {step.describe()}" if step is not None else ""
        if doers:
            now = "; ".join(f"{', '.join(sorted(actions))} ({label})" for label, actions in doers.items())
        else:
            now = "nothing (the dossier is closed)"
        return (f"cannot {action} dossier {self.code}: it is in status {self.status.describe()}{where}; "
                f"allowed now: {now}")

    # -- handlers: one per action (apply checked the table and the official) ---------------------

    def _claim(self, c: Claim, by: Official, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        if step.actor == by.id:
            return False  # already theirs: nothing to change
        if step.actor:
            raise FailedPrecondition(f"{step.describe()} of dossier {self.code} is already claimed by {step.actor}")
        step.actor = by.id
        self._fact(FactKind.ASSIGNED, now, step, by.id)
        self._record(c.action, by, now, step, c.note, request_id)
        return True

    def _complete(self, c: Complete, by: Official, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        self._finish(step, by.id, now)
        self._advance(step, now)
        self._record(c.action, by, now, step, c.note, request_id)
        return True

    def _approve(self, c: Approve, by: Official, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        # The signer approves the draft; the signing service applies the personal signature and the
        # seal (HSM keys never leave it) and reports back with `signed`.
        if (pending := self.pending_signing) is not None:
            raise FailedPrecondition(f"dossier {self.code} is already at signing (request "
                                     f"{pending.signing_request_id}); wait for the signing service")
        signing_request_id = f"{self.dossier_id}:sign:{len(self.signings) + 1}"
        seal = self.sealing_step(step)
        self.signings.append(SigningRound(signing_request_id, step.index, now, by.id, dict(c.draft or {}),
                                          seal_unit=seal.unit, seal_unit_id=seal.unit_id))
        step.actor = by.id
        self._fact(FactKind.SIGNING_REQUESTED, now, step, by.id, signing_request_id=signing_request_id,
                   draft=dict(c.draft or {}), official_id=by.id, seal_unit=seal.unit, seal_unit_id=seal.unit_id)
        self._record(c.action, by, now, step, c.note or f"sent to signing ({signing_request_id})", request_id)
        return True

    def sealing_step(self, sign_step: WorkflowStep) -> WorkflowStep:
        """The step whose unit's seal goes on the result the official at ``sign_step`` signs: the
        seal step that follows it (the issuing unit of the process definition, after any forward
        or transfer), else the sign step itself."""
        following = sign_step.index + 1
        if following < len(self.steps) and self.steps[following].role is Role.SEAL:
            return self.steps[following]
        return sign_step

    def _signed(self, c: Signed, by: System, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        pending = self.pending_signing
        if pending is None or pending.signing_request_id != c.signing_request_id:
            raise FailedPrecondition(self._unknown_signing(c.signing_request_id, pending))
        pending.state, pending.signers = "signed", list(c.signers)
        self.result = dict(c.result)
        # The sign step keeps the official who approved; the seal steps that follow it at once are
        # done by the same round (the organisation signature), credited to the signers after the first.
        seals = list(c.signers[1:])
        last = step
        self._finish(step, step.actor or by.label, now)
        while last.index + 1 < len(self.steps) and self.steps[last.index + 1].role is Role.SEAL:
            last = self.steps[last.index + 1]
            self._finish(last, seals.pop(0) if seals else by.label, now)
        self._advance(last, now)
        self._record(c.action, by, now, step, c.note or f"signed by {', '.join(c.signers) or 'the signing service'}",
                     request_id)
        return True

    def _signing_failed(self, c: SigningFailed, by: System, now: dt.datetime, step: WorkflowStep,
                        request_id: str) -> bool:
        pending = self.pending_signing
        if pending is None or pending.signing_request_id != c.signing_request_id:
            raise FailedPrecondition(self._unknown_signing(c.signing_request_id, pending))
        pending.state, pending.reason = "failed", c.reason
        # The step stays with its signer, who may approve again once the cause is fixed.
        self._fact(FactKind.SIGNING_FAILED, now, step, by.label, signing_request_id=c.signing_request_id,
                   reason=c.reason, official_id=pending.requested_by)
        self._record(c.action, by, now, step, c.reason, request_id)
        return True

    def _return_previous(self, c: ReturnPrevious, by: Official, now: dt.datetime, step: WorkflowStep,
                         request_id: str) -> bool:
        self._no_pending_signing(c.action)
        if step.index == 0:
            raise FailedPrecondition(f"cannot return_previous dossier {self.code}: {step.describe()} is the first")
        previous = self.steps[step.index - 1]
        if previous.role in SIGNING_ROLES:
            raise FailedPrecondition(f"cannot return_previous dossier {self.code} to {previous.describe()}: "
                                     "a signed document is not taken back")
        step.state, step.actor, step.started_at = StepState.PENDING, "", None
        previous.done_at = None
        self._activate(previous, now, returned_from=step.index, reason=c.reason)
        self._record(c.action, by, now, step, c.reason, request_id)
        return True

    def _forward(self, c: Forward, by: Official, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        self._may_forward(c.action, step)
        if c.unit == step.unit:
            raise InvalidArgument("unit", f"{c.unit!r} already holds {step.describe()}")
        origin = step.unit
        step.unit, step.unit_id = c.unit, c.unit_id
        self._fact(FactKind.FORWARDED, now, step, by.id, from_unit=origin, to_unit=c.unit, to_unit_id=c.unit_id,
                   reason=c.reason)
        self._activate(step, now)
        self._record(c.action, by, now, step, _joined(f"{origin} → {c.unit}", c.reason), request_id)
        return True

    def _transfer(self, c: Transfer, by: Official, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        self._may_forward(c.action, step)
        target = self.definition.transfer_target(c.unit)
        if target is None:
            allowed_units = ", ".join(t.unit for t in self.definition.transfer_targets) or "none"
            raise InvalidArgument("unit", f"{c.unit!r} is not a transfer target of this procedure's process "
                                          f"(allowed: {allowed_units})")
        if target.level is step.level:
            raise InvalidArgument("unit", f"{c.unit!r} is at the step's own level ({step.level.value}): forward it")
        origin = step.unit
        step.unit, step.unit_id, step.level = target.unit, target.unit_id, target.level
        self._fact(FactKind.TRANSFERRED, now, step, by.id, from_unit=origin, to_unit=target.unit,
                   to_unit_id=target.unit_id, to_level=target.level.value, reason=c.reason)
        self._activate(step, now)
        self._record(c.action, by, now, step, _joined(f"{origin} → {target.unit} ({target.level.value})", c.reason),
                     request_id)
        return True

    def _request_supplement(self, c: RequestSupplement, by: Official, now: dt.datetime, step: WorkflowStep,
                            request_id: str) -> bool:
        assert c.deadline is not None  # the command checks it
        if c.deadline <= now:
            raise InvalidArgument("deadline", f"{c.deadline.isoformat()} is not after now ({now.isoformat()})")
        self.supplements.append(SupplementRequest(c.reason, c.deadline.astimezone(self.calendar.tz), now, by.id,
                                                  step.index, components=list(c.components),
                                                  form=dict(c.form) if c.form else None))
        self.status = Status.SUPPLEMENT_REQUESTED
        self._fact(FactKind.SUPPLEMENT_REQUESTED, now, step, by.id, reason=c.reason, deadline=c.deadline,
                   components=list(c.components), form=dict(c.form) if c.form else None)
        self._record(c.action, by, now, step, c.reason, request_id)
        return True

    def _supplement_received(self, c: SupplementReceived, by: System, now: dt.datetime, step: WorkflowStep,
                             request_id: str) -> bool:
        supplement = self.supplements[-1]
        before = self.due_at
        if self.definition.supplement_policy is SupplementPolicy.PAUSE:
            self._pause(supplement.requested_at, now)
        else:
            self._restart(now)
        if self.due_at != before:
            self.previous_due_at.append(before)
        supplement.received_at, supplement.due_before, supplement.due_after = now, before, self.due_at
        known = {d.get("sha256") for d in self.documents}
        self.documents += [dict(d) for d in c.documents if d.get("sha256") not in known]
        self.status = Status.PROCESSING
        self._fact(FactKind.SUPPLEMENTED, now, step, by.label, policy=self.definition.supplement_policy,
                   due_before=before, due_after=self.due_at)
        self._record(c.action, by, now, step, _joined(f"{self.definition.supplement_policy.value}: due "
                                                      f"{self.due_at.isoformat()}", c.note), request_id)
        return True

    def _supplement_expired(self, c: SupplementExpired, by: System, now: dt.datetime, step: WorkflowStep,
                            request_id: str) -> bool:
        supplement = self.supplements[-1]
        if supplement.expired:
            return False  # already handled (keep_waiting): the sweep asked twice
        if now < supplement.deadline:
            raise FailedPrecondition(f"the supplement deadline of dossier {self.code} "
                                     f"({supplement.deadline.isoformat()}) has not passed")
        supplement.expired = True
        if self.definition.supplement_expiry is SupplementExpiry.KEEP_WAITING:
            self._fact(FactKind.SUPPLEMENT_EXPIRED, now, step, by.label, deadline=supplement.deadline)
            self._record(c.action, by, now, step, "supplement deadline passed; kept waiting", request_id)
            return True
        reason = f"the applicant did not supplement by {supplement.deadline.isoformat()}"
        self.notice = dict(c.notice or {}) or None
        self._close(Status.STOPPED, now, reason)
        self.finished_at = now
        self._fact(FactKind.REFUSED, now, step, by.label, reason=reason, cause="supplement_expired",
                   notice=self.notice or {})
        self._record(c.action, by, now, step, reason, request_id)
        return True

    def _request_payment(self, c: RequestPayment, by: Official, now: dt.datetime, step: WorkflowStep,
                         request_id: str) -> bool:
        self.payments.append(PaymentRequest(c.amount, now, by.id, step.index, c.note))
        self.status = Status.PAYMENT_REQUESTED
        self._fact(FactKind.PAYMENT_REQUESTED, now, step, by.id, amount=c.amount, note=c.note)
        self._record(c.action, by, now, step, _joined(f"{c.amount} VND", c.note), request_id)
        return True

    def _record_payment(self, c: RecordPayment, by: Actor, now: dt.datetime, step: WorkflowStep,
                        request_id: str) -> bool:
        payment = self.payments[-1]
        payment.paid_at, payment.receipt, payment.recorded_by = now, c.receipt, by.label
        # 6 → 9 when the result was signed while the payment was awaited (the return step is
        # active); otherwise processing resumes.
        self.status = Status.PROCESSING
        self._fact(FactKind.PAYMENT_RECORDED, now, step, by.label, amount=payment.amount, receipt=c.receipt)
        if step is self.steps[-1]:
            self._result_ready(now)
        self._record(c.action, by, now, step, _joined(c.receipt, c.note), request_id)
        return True

    def _refuse(self, c: Refuse, by: Official, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        self._no_pending_signing(c.action)
        self._finish(step, by.id, now)
        self.notice = dict(c.notice or {}) or None
        self._close(Status.STOPPED, now, c.reason)
        self.finished_at = now
        self._fact(FactKind.REFUSED, now, step, by.id, reason=c.reason, cause="refused", notice=self.notice or {})
        self._record(c.action, by, now, step, c.reason, request_id)
        return True

    def _return_result(self, c: ReturnResult, by: Official, now: dt.datetime, step: WorkflowStep,
                       request_id: str) -> bool:
        self._finish(step, by.id, now)
        self.status, self.closed_at = Status.RETURNED, now
        self.returned = {"channel": c.channel.value, "receiver": c.receiver}  # type: ignore[union-attr]
        self._fact(FactKind.RETURNED, now, step, by.id, channel=c.channel, receiver=c.receiver)
        self._record(c.action, by, now, step, _joined(f"via {c.channel}", c.note), request_id)
        return True

    def _withdrawn(self, c: Withdrawn, by: System, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        if (pending := self.pending_signing) is not None:
            pending.state = "cancelled"  # a late signature finds the dossier closed
        self._close(Status.WITHDRAWN, now, c.reason)
        self._fact(FactKind.WITHDRAWN, now, step, by.label, reason=c.reason)
        self._record(c.action, by, now, step, c.reason, request_id)
        return True

    def _apologize(self, c: Apologize, by: System, now: dt.datetime, step: WorkflowStep, request_id: str) -> bool:
        assert c.new_due_at is not None  # the command checks it
        promised = self.promised_due_at
        new_due_at = c.new_due_at.astimezone(self.calendar.tz)
        if new_due_at <= promised:
            raise InvalidArgument("new_due_at", f"{new_due_at.isoformat()} is not after the current appointment "
                                                f"({promised.isoformat()})")
        self.apologies.append(Apology(now, promised, new_due_at, c.reason, dict(c.form or {})))
        self._fact(FactKind.APOLOGY_ISSUED, now, step, by.label, previous_due_at=promised, new_due_at=new_due_at,
                   reason=c.reason, late=now > promised, form=dict(c.form or {}))
        self._record(c.action, by, now, step, _joined(f"new appointment {new_due_at.isoformat()}", c.reason),
                     request_id)
        return True

    # -- SLA alerts (not actions: nobody asks for them, the sweep notices) ------------------------

    def raise_alert(self, kind: FactKind, scope: str, deadline: dt.datetime, now: dt.datetime) -> bool:
        """Note that the active step (``scope="step"``) or the dossier (``"dossier"``) is due soon or
        overdue against ``deadline``; False when this very alert was raised before (a sweep that
        looks twice, or a deadline that has not moved since), so each is published once. A deadline
        that moves (a supplement under pause, a restart) is a new deadline and may be alerted again."""
        if kind not in (FactKind.DUE_SOON, FactKind.OVERDUE) or scope not in ("step", "dossier"):
            raise ValueError(f"not an SLA alert: {kind} for {scope}")
        step = self.current
        if step is None:
            return False
        key = f"{scope}:{step.index if scope == 'step' else '-'}:{kind.value}:{deadline.isoformat()}"
        if key in self.alerts:
            return False
        self.alerts.append(key)
        self._fact(kind, now, step, scope=scope, deadline=deadline, unit_id=step.unit_id)
        return True

    # -- form 05 (not an action: the worker issues it after the return) --------------------------

    def issue_control_slip(self, form: Callable[[], Mapping[str, Any]], now: dt.datetime) -> bool:
        """Record form 05, closed by the return, once the result was returned: ``form`` gives its
        stored (sealed) reference, asked only when it is due. False when it was recorded before (a
        redelivered message), so it is made and announced once."""
        if self.control_slip:
            return False
        if self.status is not Status.RETURNED:
            raise FailedPrecondition(f"dossier {self.code} is in status {int(self.status)}: form 05 is issued "
                                     "once its result is returned")
        self.control_slip = dict(form())
        self._fact(FactKind.CONTROL_SLIP_ISSUED, now, None, form=self.control_slip)
        return True

    # -- helpers --------------------------------------------------------------------------------

    def _activate(self, step: WorkflowStep, now: dt.datetime, **data: Any) -> None:
        self._hand_over(step, now)
        step.state, step.actor, step.started_at = StepState.ACTIVE, "", now
        self._fact(FactKind.ASSIGNED, now, step, **data)
        if step is self.steps[-1] and self.status is Status.PROCESSING:
            self._result_ready(now)  # 4 → 9: only the return step is left

    def _hand_over(self, to: WorkflowStep, now: dt.datetime) -> None:
        previous = self.handovers[-1] if self.handovers else None
        self.handovers.append(HandOver(
            at=now, step_index=to.index, step_name=to.title, to_unit=to.unit,
            from_unit=previous.to_unit if previous else self.receiving_unit,
            from_actor=self.steps[previous.step_index].actor if previous else ""))

    def _advance(self, done: WorkflowStep, now: dt.datetime) -> None:
        if done.index + 1 < len(self.steps):
            self._activate(self.steps[done.index + 1], now)

    def _result_ready(self, now: dt.datetime) -> None:
        self.status, self.finished_at = Status.RESULT_READY, now
        self._fact(FactKind.RESULT_READY, now, self.steps[-1], result=dict(self.result or {}))

    def _finish(self, step: WorkflowStep, actor: str, now: dt.datetime) -> None:
        step.state, step.actor, step.done_at = StepState.DONE, actor, now
        self._fact(FactKind.STEP_COMPLETED, now, step, actor)

    def _close(self, status: Status, now: dt.datetime, reason: str) -> None:
        for step in self.steps:
            if step.state in (StepState.ACTIVE, StepState.PENDING):
                step.state = StepState.SKIPPED
        self.status, self.closed_at, self.reason = status, now, reason

    def _may_forward(self, action: Action, step: WorkflowStep) -> None:
        if not step.forward:
            raise FailedPrecondition(f"cannot {action} dossier {self.code}: {step.describe()} may not forward or "
                                     "transfer (forward is false in the process definition)")

    def _no_pending_signing(self, action: Action) -> None:
        if (pending := self.pending_signing) is not None:
            raise FailedPrecondition(f"cannot {action} dossier {self.code}: its draft is at signing (request "
                                     f"{pending.signing_request_id}); wait for the signing service")

    def _unknown_signing(self, signing_request_id: str, pending: SigningRound | None) -> str:
        expected = f"the pending one is {pending.signing_request_id}" if pending else "none is pending"
        return f"dossier {self.code} has no pending signing request {signing_request_id!r} ({expected})"

    def _pause(self, since: dt.datetime, now: dt.datetime) -> None:
        """Move the due date and the open steps' deadlines by the time the applicant held the dossier:
        working time for working-day procedures, calendar days for calendar-day ones."""
        calendar = self.calendar
        if self.definition.time_type is TimeType.WORKING_DAYS:
            waited = calendar.working_time_between(since, now)
            if waited <= dt.timedelta():
                return  # asked and answered outside working hours: no working time was lost

            def shift(t: dt.datetime) -> dt.datetime:
                return calendar.add_working_hours(t, waited)
        else:
            days = (now.astimezone(calendar.tz).date() - since.astimezone(calendar.tz).date()).days
            if days <= 0:
                return

            def shift(t: dt.datetime) -> dt.datetime:
                day = t.date() + dt.timedelta(days=days)
                if not calendar.is_working_day(day):
                    day = calendar.next_working_day(day)  # a deadline never falls on a day off
                return dt.datetime.combine(day, t.timetz())

        for step in self.steps:
            if step.state in (StepState.ACTIVE, StepState.PENDING):
                step.deadline = shift(step.deadline)
        self.due_at = shift(self.due_at)

    def _restart(self, now: dt.datetime) -> None:
        """The full duration again from the resubmission: the schedule as if received now, for the
        steps not yet done (those keep the deadlines they were held to)."""
        self.due_at = self.definition.due_from(now, self.calendar)
        deadlines = self.definition.deadlines(now, self.due_at, self.calendar)
        for step in self.steps:
            if step.state in (StepState.ACTIVE, StepState.PENDING):
                step.deadline = deadlines[step.index]

    def _fact(self, kind: FactKind, now: dt.datetime, step: WorkflowStep | None, actor: str = "",
              **data: Any) -> None:
        self.facts.append(Fact(kind, now, step.index if step else None, step.title if step else "",
                               step.role.value if step else "", step.unit if step else "", actor, _plain(data)))

    def _record(self, action: str, by: Actor | None, now: dt.datetime, step: WorkflowStep | None, note: str = "",
                request_id: str = "") -> None:
        unit = by.unit if isinstance(by, Official) else (step.unit if step else "")
        self.timeline.append(TimelineRow(
            at=now, action=str(action), status=self.status, actor=by.label if by else "", unit=unit,
            role=step.role.value if step else "", step_index=step.index if step else None,
            step_name=step.title if step else "", step_deadline=step.deadline if step else None, note=note,
            request_id=request_id))

    # -- JSON (for the adapter's document) ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "dossier_id": self.dossier_id, "code": self.code, "receiving_unit": self.receiving_unit,
            "procedure_code": self.procedure_code, "definition": self.definition.to_dict(),
            "received_at": self.received_at.isoformat(), "due_at": self.due_at.isoformat(),
            "status": int(self.status), "steps": [s.to_dict() for s in self.steps],
            "timeline": [r.to_dict() for r in self.timeline],
            "previous_due_at": [d.isoformat() for d in self.previous_due_at],
            "supplements": [s.to_dict() for s in self.supplements],
            "payments": [p.to_dict() for p in self.payments],
            "signings": [s.to_dict() for s in self.signings],
            "apologies": [a.to_dict() for a in self.apologies],
            "result": self.result, "reason": self.reason,
            "finished_at": fields.iso(self.finished_at), "closed_at": fields.iso(self.closed_at),
            "returned": self.returned, "channel": self.channel, "area": self.area,
            "documents": [dict(d) for d in self.documents], "alerts": list(self.alerts), "notice": self.notice,
            "handovers": [h.to_dict() for h in self.handovers], "applicant": dict(self.applicant),
            "procedure_name": self.procedure_name, "control_slip": self.control_slip,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], calendar: Calendar) -> WorkflowInstance:
        return cls(
            dossier_id=data["dossier_id"], code=data["code"],
            receiving_unit=data.get("receiving_unit") or data["district"],  # "district" before 2026-12
            procedure_code=data["procedure_code"], definition=ProcessDefinition.from_dict(data["definition"]),
            received_at=fields.instant(data["received_at"], "received_at"),
            due_at=fields.instant(data["due_at"], "due_at"), status=Status(data["status"]),
            steps=[WorkflowStep.from_dict(s) for s in data["steps"]],
            timeline=[TimelineRow.from_dict(r) for r in data.get("timeline", [])],
            previous_due_at=[fields.instant(d, "previous_due_at") for d in data.get("previous_due_at", [])],
            supplements=[SupplementRequest.from_dict(s) for s in data.get("supplements", [])],
            payments=[PaymentRequest.from_dict(p) for p in data.get("payments", [])],
            signings=[SigningRound.from_dict(s) for s in data.get("signings", [])],
            apologies=[Apology.from_dict(a) for a in data.get("apologies", [])],
            result=data.get("result"), reason=data.get("reason", ""),
            finished_at=fields.optional_instant(data.get("finished_at"), "finished_at"),
            closed_at=fields.optional_instant(data.get("closed_at"), "closed_at"),
            returned=data.get("returned"), channel=data.get("channel", "desk"),
            area=data.get("area") or data["district"], documents=list(data.get("documents", [])),
            alerts=list(data.get("alerts", [])), notice=data.get("notice"),
            handovers=[HandOver.from_dict(h) for h in data.get("handovers", [])],
            applicant=dict(data.get("applicant") or {}), procedure_name=data.get("procedure_name", ""),
            control_slip=data.get("control_slip"),
            calendar=calendar)


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
