"""What intake's worker does with the messages on ``intake.<area>``: issue forms, record routing's
supplement requests, and follow the dossier's progress through routing's public events
(processing, payment, stop, result, return) so that tracking tells the truth. How a delivery
becomes one of these messages is the worker's edge (``intake.entrypoints.messages``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from intake.application.dossiers import Dossiers
from intake.application.forms import Forms
from intake.domain.dossier import Status
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import NOTHING_TO_REMEMBER

# routing's event → (the status it means, the action shown to the public)
PROGRESS_EVENTS: dict[str, tuple[Status, str]] = {
    "dossier.assigned": (Status.PROCESSING, "processing"),
    "dossier.result_ready": (Status.RESULT_READY, "result ready"),
    "dossier.returned": (Status.RETURNED, "result returned"),
}
# routing's event → the action shown to the public (the status: intake.domain.lifecycle.MIRRORED_CHANGES)
CHANGE_EVENTS: dict[str, str] = {
    "dossier.stopped": "processing stopped",
    "dossier.payment_requested": "fee or tax payment requested",
    "dossier.payment_recorded": "payment recorded",
}
FORMS = ("01", "03")  # receipt and appointment; refusal


@dataclass(frozen=True)
class IssueForm:
    """Render and store form 01 or 03 of a dossier (intake's own ``intake.render_form``)."""

    dossier_id: str
    form: str


@dataclass(frozen=True)
class FollowProgress:
    """Routing moved the dossier on (assigned, result ready, returned): mirror it for tracking."""

    code: str
    area: str
    status: Status
    action: str
    at: datetime
    event_id: str


@dataclass(frozen=True)
class FollowChange:
    """Routing stopped the dossier or asked for / recorded a payment: mirror it for tracking."""

    code: str
    area: str
    event_name: str
    action: str
    at: datetime
    event_id: str


@dataclass(frozen=True)
class RecordSupplementRequest:
    """Routing asked the applicant for a supplement: status 5 here too, with what and by when."""

    code: str
    area: str
    reason: str
    requested_by: str
    at: datetime
    deadline: datetime | None
    event_id: str


class Progress:
    """Handles intake's worker messages."""

    def __init__(self, dossiers: Dossiers, forms: Forms):
        self._dossiers = dossiers
        self._forms = forms

    def issue_form(self, m: IssueForm) -> None:
        self._forms.issue(m.dossier_id, m.form)

    def follow_progress(self, m: FollowProgress) -> object:
        if self._dossiers.follow_progress(m.code, m.status, m.action, m.at, m.event_id):
            return None  # its processed record rode with the change
        # Nothing changed (most dossier.assigned: the dossier is processing already). Progress only
        # moves forward, so a redelivery decided afresh is decided as rightly: no record to keep.
        return NOTHING_TO_REMEMBER

    def follow_change(self, m: FollowChange) -> None:
        self._dossiers.follow_change(m.code, m.event_name, m.action, m.at, m.event_id)

    def record_supplement_request(self, m: RecordSupplementRequest) -> None:
        self._dossiers.record_supplement_request(m.code, m.reason, m.requested_by, m.at, m.deadline, m.event_id)

    def bus(self) -> MessageBus:
        return MessageBus({IssueForm: self.issue_form, FollowProgress: self.follow_progress,
                           FollowChange: self.follow_change, RecordSupplementRequest: self.record_supplement_request})
