"""What can be done to a workflow instance, by whom, in which status: the one table.

Officials act on the *active* step: the table says which actions the step's role allows in each
status, and the official must belong to the step's unit and hold its role. The other services act
as *systems*: intake (supplement received, payment recorded, withdrawn), signing (signed, signing
failed) and the clock (the SLA sweep: supplement deadline passed, apology issued).

Transitions (DOMAIN.md): 4→4 (step to step, unit to unit, level to level); 4→5→4; 5→8 when the
supplement deadline passes (per procedure: stop, or keep waiting); 4→6→4|9; 4→8; 4→9→10; 4|5|6→7.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from motcua.errors import InvalidArgument
from routing.domain import fields
from routing.domain.process import Role
from routing.domain.status import Status


class Action(StrEnum):
    CLAIM = "claim"
    COMPLETE = "complete"
    APPROVE = "approve"  # approve the draft and send it to signing (at a sign or seal step)
    RETURN_PREVIOUS = "return_previous"
    FORWARD = "forward"  # to another unit of the same level
    TRANSFER = "transfer"  # to a unit of another level (liên thông)
    REQUEST_SUPPLEMENT = "request_supplement"
    SUPPLEMENT_RECEIVED = "supplement_received"
    SUPPLEMENT_EXPIRED = "supplement_expired"
    REQUEST_PAYMENT = "request_payment"
    RECORD_PAYMENT = "record_payment"
    REFUSE = "refuse"
    SIGNED = "signed"
    SIGNING_FAILED = "signing_failed"
    RETURN_RESULT = "return_result"
    WITHDRAWN = "withdrawn"
    APOLOGIZE = "apologize"  # form 04: a new appointment, issued no later than the due date


class Source(StrEnum):
    """Services that act on an instance without an official."""

    INTAKE = "intake"
    SIGNING = "signing"
    CLOCK = "clock"  # the SLA sweep


A = Action
_HANDS_ON = frozenset({A.CLAIM, A.RETURN_PREVIOUS, A.FORWARD, A.TRANSFER})
_DECIDES = frozenset({A.REQUEST_SUPPLEMENT, A.REQUEST_PAYMENT, A.REFUSE})

# status → who (the active step's role, or a system) → the actions allowed. Nothing else is.
ALLOWED: Mapping[Status, Mapping[Role | Source, frozenset[Action]]] = {
    Status.PROCESSING: {
        Role.RECEIVE: frozenset({A.CLAIM, A.COMPLETE, A.FORWARD, A.TRANSFER}),  # nothing before it
        Role.ASSIGN: _HANDS_ON | {A.COMPLETE},
        Role.REVIEW: _HANDS_ON | _DECIDES | {A.COMPLETE},
        Role.APPROVE: _HANDS_ON | _DECIDES | {A.COMPLETE},
        # Signatures come from the signing service: the signer approves the draft, signing reports.
        Role.SIGN: frozenset({A.CLAIM, A.APPROVE, A.RETURN_PREVIOUS, A.REQUEST_PAYMENT, A.REFUSE}),
        Role.SEAL: frozenset({A.CLAIM, A.APPROVE}),
        Source.INTAKE: frozenset({A.WITHDRAWN}),
        Source.SIGNING: frozenset({A.SIGNED, A.SIGNING_FAILED}),
        Source.CLOCK: frozenset({A.APOLOGIZE}),
    },
    Status.SUPPLEMENT_REQUESTED: {
        Source.INTAKE: frozenset({A.SUPPLEMENT_RECEIVED, A.WITHDRAWN}),
        Source.CLOCK: frozenset({A.SUPPLEMENT_EXPIRED}),
    },
    Status.PAYMENT_REQUESTED: {
        # The official who asked for the fee or tax may record it (a paper receipt), or intake does.
        Role.REVIEW: frozenset({A.RECORD_PAYMENT}),
        Role.APPROVE: frozenset({A.RECORD_PAYMENT}),
        Role.SIGN: frozenset({A.RECORD_PAYMENT}),
        Source.INTAKE: frozenset({A.RECORD_PAYMENT, A.WITHDRAWN}),
        # A tax notice may go out while the decision is at signing; the result waits for the payment.
        Source.SIGNING: frozenset({A.SIGNED, A.SIGNING_FAILED}),
        Source.CLOCK: frozenset({A.APOLOGIZE}),
    },
    Status.RESULT_READY: {
        Role.RETURN: frozenset({A.CLAIM, A.RETURN_RESULT}),
    },
    Status.WITHDRAWN: {},
    Status.STOPPED: {},
    Status.RETURNED: {},
}


def allowed(status: Status, who: Role | Source | None) -> frozenset[Action]:
    if who is None:
        return frozenset()
    return ALLOWED[status].get(who, frozenset())


# -- who acts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Official:
    """An authenticated official: id, the unit (slug) they work in and the roles they hold there."""

    id: str
    unit: str
    roles: frozenset[Role] = frozenset()
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InvalidArgument("official.id", "is required")
        if not isinstance(self.unit, str) or not self.unit.strip():
            raise InvalidArgument("official.unit", "is required")
        object.__setattr__(self, "roles", frozenset(fields.choice(r, Role, "official.roles") for r in self.roles))

    @property
    def label(self) -> str:
        return self.id


@dataclass(frozen=True)
class System:
    source: Source

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", fields.choice(self.source, Source, "source"))

    @property
    def label(self) -> str:
        return self.source.value


INTAKE = System(Source.INTAKE)
SIGNING = System(Source.SIGNING)
CLOCK = System(Source.CLOCK)

Actor = Official | System


# -- the commands -------------------------------------------------------------------------------
# Each validates its own fields (InvalidArgument naming the field); ``parse`` builds one from the
# plain JSON of a request or work message.


def _required_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(name, "is required")
    return value.strip()


def _optional_text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(name, "must be a string")
    return value.strip()


@dataclass(frozen=True)
class Command:
    action: ClassVar[Action]
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "note", _optional_text(self.note, "note"))


@dataclass(frozen=True)
class Claim(Command):
    action = A.CLAIM


@dataclass(frozen=True)
class Complete(Command):
    action = A.COMPLETE


@dataclass(frozen=True)
class Approve(Command):
    action = A.APPROVE
    draft: Mapping[str, Any] | None = None  # the draft result's document reference, when rendered


@dataclass(frozen=True)
class ReturnPrevious(Command):
    action = A.RETURN_PREVIOUS
    reason: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "reason", _required_text(self.reason, "reason"))


@dataclass(frozen=True)
class Forward(Command):
    action = A.FORWARD
    unit: str = ""  # the target unit's slug, same level as the step
    unit_id: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "unit", _required_text(self.unit, "unit"))
        object.__setattr__(self, "unit_id", _required_text(self.unit_id, "unit_id"))
        object.__setattr__(self, "reason", _optional_text(self.reason, "reason"))


@dataclass(frozen=True)
class Transfer(Command):
    action = A.TRANSFER
    unit: str = ""  # one of the definition's transfer_targets
    reason: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "unit", _required_text(self.unit, "unit"))
        object.__setattr__(self, "reason", _optional_text(self.reason, "reason"))


@dataclass(frozen=True)
class RequestSupplement(Command):
    action = A.REQUEST_SUPPLEMENT
    reason: str = ""
    deadline: dt.datetime | None = None  # by when the applicant must supplement
    components: tuple[str, ...] = ()  # what is missing or to be corrected, as form 02 lists it
    form: Mapping[str, Any] | None = None  # form 02 (PDF) as rendered and stored

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "reason", _required_text(self.reason, "reason"))
        if self.deadline is None:
            raise InvalidArgument("deadline", "is required")
        object.__setattr__(self, "deadline", fields.instant(self.deadline, "deadline"))
        if not isinstance(self.components, tuple | list) or not all(
                isinstance(c, str) and c.strip() for c in self.components):
            raise InvalidArgument("components", "must be a list of non-blank texts")
        object.__setattr__(self, "components", tuple(c.strip() for c in self.components))
        if self.form is not None:
            fields.mapping(self.form, "form")


@dataclass(frozen=True)
class SupplementReceived(Command):
    action = A.SUPPLEMENT_RECEIVED
    documents: tuple[Mapping[str, Any], ...] = ()  # the applicant's new documents (references)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.documents, Mapping | str) or not all(isinstance(d, Mapping) for d in self.documents):
            raise InvalidArgument("documents", "must be a list of document references")
        object.__setattr__(self, "documents", tuple(self.documents))


@dataclass(frozen=True)
class SupplementExpired(Command):
    action = A.SUPPLEMENT_EXPIRED
    notice: Mapping[str, Any] | None = None  # the stop notice, when the procedure stops the dossier

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.notice is not None:
            fields.mapping(self.notice, "notice")


@dataclass(frozen=True)
class RequestPayment(Command):
    action = A.REQUEST_PAYMENT
    amount: int = 0  # VND

    def __post_init__(self) -> None:
        super().__post_init__()
        fields.whole(self.amount, "amount", minimum=1)


@dataclass(frozen=True)
class RecordPayment(Command):
    action = A.RECORD_PAYMENT
    receipt: str = ""  # receipt or transaction number

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "receipt", _optional_text(self.receipt, "receipt"))


@dataclass(frozen=True)
class Refuse(Command):
    action = A.REFUSE
    reason: str = ""
    notice: Mapping[str, Any] | None = None  # the notice to the applicant (PDF), as rendered and stored

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "reason", _required_text(self.reason, "reason"))
        if self.notice is not None:
            fields.mapping(self.notice, "notice")


@dataclass(frozen=True)
class Signed(Command):
    action = A.SIGNED
    signing_request_id: str = ""
    signers: tuple[str, ...] = ()  # personal signer first, then the organisation (seal)
    result: Mapping[str, Any] = field(default_factory=dict)  # the signed document's reference

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "signing_request_id", _required_text(self.signing_request_id, "signing_request_id"))
        if isinstance(self.signers, str) or not all(isinstance(s, str) and s.strip() for s in self.signers):
            raise InvalidArgument("signers", "must be a list of signers' names")
        object.__setattr__(self, "signers", tuple(s.strip() for s in self.signers))
        fields.mapping(self.result, "result")


@dataclass(frozen=True)
class SigningFailed(Command):
    action = A.SIGNING_FAILED
    signing_request_id: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "signing_request_id", _required_text(self.signing_request_id, "signing_request_id"))
        object.__setattr__(self, "reason", _required_text(self.reason, "reason"))


class ReturnChannel(StrEnum):
    DESK = "desk"  # handed over at the one-stop desk
    POST = "post"  # sent by public postal service
    ONLINE = "online"  # delivered electronically


@dataclass(frozen=True)
class ReturnResult(Command):
    action = A.RETURN_RESULT
    channel: ReturnChannel | str = ""
    receiver: str = ""  # who received it (the applicant or an authorised person)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.channel:
            raise InvalidArgument("channel", "is required")
        object.__setattr__(self, "channel", fields.choice(self.channel, ReturnChannel, "channel"))
        object.__setattr__(self, "receiver", _required_text(self.receiver, "receiver"))


@dataclass(frozen=True)
class Withdrawn(Command):
    action = A.WITHDRAWN
    reason: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "reason", _optional_text(self.reason, "reason"))


@dataclass(frozen=True)
class Apologize(Command):
    action = A.APOLOGIZE
    new_due_at: dt.datetime | None = None
    reason: str = ""
    form: Mapping[str, Any] | None = None  # form 04 as rendered and stored

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.form is not None:
            fields.mapping(self.form, "form")
        if self.new_due_at is None:
            raise InvalidArgument("new_due_at", "is required")
        object.__setattr__(self, "new_due_at", fields.instant(self.new_due_at, "new_due_at"))
        object.__setattr__(self, "reason", _required_text(self.reason, "reason"))


COMMANDS: Mapping[Action, type[Command]] = {c.action: c for c in (
    Claim, Complete, Approve, ReturnPrevious, Forward, Transfer, RequestSupplement, SupplementReceived,
    SupplementExpired, RequestPayment, RecordPayment, Refuse, Signed, SigningFailed, ReturnResult, Withdrawn,
    Apologize)}

_INSTANTS = {"deadline", "new_due_at"}


def parse(action: Any, data: Mapping[str, Any] | None = None) -> Command:
    """A command from its name and plain JSON fields (ISO 8601 strings for times). Unknown fields
    are refused: from an official's client a misspelt field is a mistake worth saying."""
    name = fields.choice(action, Action, "action")
    command = COMMANDS[name]
    data = dict(fields.mapping(data or {}, "fields"))
    known = {f for f in command.__dataclass_fields__ if f != "action"}
    if unknown := sorted(set(data) - known):
        raise InvalidArgument(unknown[0], f"is not a field of {name.value} (fields: {', '.join(sorted(known))})")
    for key in _INSTANTS & set(data):
        data[key] = fields.optional_instant(data[key], key)
    for key in ("signers", "documents", "components"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return command(**data)
