"""What intake's worker takes from ``intake.<area>``, as the application's messages: its own
form work and the public events of routing it follows."""

from __future__ import annotations

from collections.abc import Callable

from intake.application.progress import (
    CHANGE_EVENTS,
    FORMS,
    PROGRESS_EVENTS,
    FollowChange,
    FollowProgress,
    IssueForm,
    Progress,
    RecordSupplementRequest,
)
from motcua.errors import InvalidArgument
from motcua.events.v1 import events_pb2
from motcua.messaging.consuming import Delivery
from motcua.messaging.envelope import CloudEvent, WorkMessage
from motcua.messaging.inbound import Inbound
from motcua.protobufs import datetime_of
from motcua.work.v1 import work_pb2


def issue_form(work: WorkMessage) -> IssueForm:
    render = work.decode(work_pb2.RenderForm)
    if render.form not in FORMS:
        raise InvalidArgument("form", f"must be one of {', '.join(FORMS)}")
    if not render.dossier_id:
        raise InvalidArgument("dossier_id", "is required")
    return IssueForm(dossier_id=render.dossier_id, form=render.form)


def follow_progress(event: CloudEvent) -> FollowProgress:
    status, action = PROGRESS_EVENTS[event.name]
    return FollowProgress(code=event.subject, area=event.area, status=status, action=action, at=event.time,
                          event_id=event.id)


def follow_change(event: CloudEvent) -> FollowChange:
    return FollowChange(code=event.subject, area=event.area, event_name=event.name, action=CHANGE_EVENTS[event.name],
                        at=event.time, event_id=event.id)


def record_supplement_request(event: CloudEvent) -> RecordSupplementRequest:
    request = event.decode(events_pb2.SupplementRequested)
    deadline = datetime_of(request.supplement_deadline, "supplement_deadline") \
        if request.HasField("supplement_deadline") else None
    at = datetime_of(request.requested_at, "requested_at") if request.HasField("requested_at") else event.time
    return RecordSupplementRequest(code=event.subject, area=event.area, reason=request.reason,
                                   requested_by=request.requested_by, at=at, deadline=deadline, event_id=event.id)


INBOUND = Inbound(
    work={"intake.render_form": issue_form},
    events={**dict.fromkeys(PROGRESS_EVENTS, follow_progress), **dict.fromkeys(CHANGE_EVENTS, follow_change),
            "dossier.supplement_requested": record_supplement_request})


def dispatcher(progress: Progress) -> Callable[[Delivery], None]:
    """The worker's handler of one delivery."""
    return INBOUND.dispatch(progress.bus())
