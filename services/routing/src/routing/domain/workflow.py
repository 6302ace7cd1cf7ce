"""The workflow instance of one accepted dossier: its steps and where it stands.

The skeleton's process: receive → review → approve (done in one go when the dossier arrives, as a
desk clerk, specialist and leader would) → sign (waits for the signing service) → return. The full
engine (process definitions from the catalog, officials' actions, deadlines) deepens this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum


class Status(IntEnum):
    PROCESSING = 4
    RESULT_READY = 9
    RETURNED = 10


SKELETON_STEPS: tuple[tuple[str, str], ...] = (
    ("receive", "receive"),
    ("review", "review"),
    ("approve", "approve"),
    ("sign", "sign"),
    ("return", "return"),
)


class WorkflowError(Exception):
    """An instruction that does not fit the workflow's state."""


@dataclass
class Step:
    name: str
    role: str
    state: str = "pending"  # pending | active | done
    actor: str = ""
    done_at: datetime | None = None


@dataclass
class Fact:
    """Something that happened to the workflow, for the events the application publishes."""

    kind: str  # assigned | step_completed | signing_requested | result_ready | returned
    step: str = ""
    role: str = ""
    actor: str = ""
    at: datetime | None = None


@dataclass
class Workflow:
    dossier_id: str
    code: str
    district: str
    procedure_code: str
    unit_id: str
    received_at: datetime
    documents: list[dict]
    steps: list[Step]
    status: Status = Status.PROCESSING
    draft: dict | None = None
    result: dict | None = None
    signing_request_id: str = ""
    version: int = 0
    facts: list[Fact] = field(default_factory=list)

    @classmethod
    def open(cls, *, dossier_id: str, code: str, district: str, procedure_code: str, unit_id: str,
             received_at: datetime, documents: list[dict], now: datetime) -> Workflow:
        steps = [Step(name, role) for name, role in SKELETON_STEPS]
        workflow = cls(dossier_id=dossier_id, code=code, district=district, procedure_code=procedure_code,
                       unit_id=unit_id, received_at=received_at, documents=documents, steps=steps)
        workflow._activate(0, now)
        return workflow

    @property
    def current(self) -> Step | None:
        return next((s for s in self.steps if s.state == "active"), None)

    def complete_current(self, actor: str, now: datetime) -> None:
        step = self.current
        if step is None:
            raise WorkflowError("no active step")
        step.state, step.actor, step.done_at = "done", actor, now
        self.facts.append(Fact("step_completed", step.name, step.role, actor, now))
        index = self.steps.index(step)
        if index + 1 < len(self.steps):
            self._activate(index + 1, now)

    def request_signing(self, signing_request_id: str, draft: dict) -> None:
        if self.current is None or self.current.name != "sign":
            raise WorkflowError("signing is requested only at the sign step")
        self.signing_request_id, self.draft = signing_request_id, draft
        self.facts.append(Fact("signing_requested", "sign", "sign"))

    def signed(self, signing_request_id: str, result: dict, signers: list[str], now: datetime) -> bool:
        """Record the signed result; False when this was already recorded (a repeated message)."""
        if self.result is not None:
            return False
        if signing_request_id != self.signing_request_id:
            raise WorkflowError(f"unknown signing request {signing_request_id!r}")
        self.result = result
        self.complete_current(", ".join(signers), now)
        self.status = Status.RESULT_READY
        self.facts.append(Fact("result_ready", at=now))
        return True

    def return_result(self, channel: str, now: datetime) -> None:
        if self.status is not Status.RESULT_READY:
            raise WorkflowError("only a ready result can be returned")
        self.complete_current(f"desk ({channel})", now)
        self.status = Status.RETURNED
        self.facts.append(Fact("returned", at=now))

    def _activate(self, index: int, now: datetime) -> None:
        step = self.steps[index]
        step.state = "active"
        self.facts.append(Fact("assigned", step.name, step.role, at=now))
