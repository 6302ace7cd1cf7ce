"""What routing's worker does with what other services report (the messages on ``routing.<area>``):
each becomes one action on the dossier's instance, by the service that reported it (never an
official), applied once however often it arrives:

* :class:`OpenWorkflow` (intake's ``routing.route_dossier``): open the instance;
* :class:`ReportToWorkflow` with ``Signed`` (signing's ``routing.signing_completed``): the draft is
  signed → the sign and seal steps are done, the return step is active, the result is ready (9);
  with ``SupplementReceived`` (intake's ``dossier.supplemented``): processing resumes, the due date
  moved by the procedure's policy, the new documents join the dossier; with ``Withdrawn`` (intake's
  ``dossier.withdrawn``): the applicant withdrew (7);
* :class:`IssueControlSlip` (the return's own ``routing.render_form``): form 05 of the returned
  dossier, rendered, sealed, stored and recorded once, with ``dossier.form_issued``.

A report that does not fit the instance's state (a withdrawal after the result was returned) is
refused for good and parked in the queue's .dlq for an operator, never dropped; a report about an
instance not opened yet is retried (its route_dossier message may still be on its way). How a
delivery becomes one of these messages is the worker's edge (``routing.entrypoints.messages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from motcua.errors import NotFound
from motcua.messagebus import MessageBus
from motcua.unit_of_work import UnitOfWork
from routing.application.repository import Instances
from routing.domain.actions import Actor, Command
from routing.domain.instance import WorkflowInstance

# Render form 05 of a returned dossier, seal it by the receiving unit and store it: its document
# reference (routing.adapters.drafts.ControlSlips). Sealing failing raises: the message is retried.
ControlSlips = Callable[[WorkflowInstance], dict[str, Any]]

log = logging.getLogger(__name__)


class NotOpenYet(Exception):
    """A report about a dossier whose instance is not open yet: retried with backoff."""


@dataclass(frozen=True)
class OpenWorkflow:
    """Open the workflow of an accepted dossier (intake's ``routing.route_dossier`` body)."""

    body: Mapping[str, Any]
    code: str = ""
    area: str = ""
    traceparent: str | None = None


@dataclass(frozen=True)
class ReportToWorkflow:
    """A system's report on a dossier (``by``: signing or intake), applied once per message."""

    dossier_id: str
    command: Command
    by: Actor
    message_id: str
    code: str = ""
    area: str = ""
    traceparent: str | None = None


@dataclass(frozen=True)
class IssueControlSlip:
    """Issue form 05 of a returned dossier (the ``routing.render_form`` its return's write sent).

    Why after the return and not inside the return's Act: the slip is the dossier's internal record
    of its hand-overs (Circular 01/2018/TT-VPCP, Mẫu 05), kept with the dossier and packed in its
    archive — the applicant leaves the desk with the result (and holds form 01), not with form 05,
    and DOMAIN.md asks of it only that it exists, closed by the return. Its content is fixed once
    the dossier is returned (status 10 is terminal; the slip is dated at the return), so the worker
    renders the very slip the Act would have. Rendering and sealing it inside the Act (a PDF and a
    SealDocument call to the signing api, ~1 s) held the official's call and the dossier's
    ``dossier.returned`` for nothing."""

    dossier_id: str
    traceparent: str | None = None


class RoutingWork:
    """Handles :class:`OpenWorkflow`, :class:`ReportToWorkflow` and :class:`IssueControlSlip`."""

    def __init__(self, instances: Instances, control_slips: ControlSlips | None = None):
        self._instances = instances
        self._control_slips = control_slips

    def open(self, message: OpenWorkflow) -> None:
        self._instances.open(message.body, message.traceparent)

    def report(self, message: ReportToWorkflow) -> None:
        try:
            changed = self._instances.act_as_system(message.dossier_id, message.command, message.by,
                                                    request_id=f"{message.by.label}:{message.message_id}",
                                                    traceparent=message.traceparent)
        except NotFound as exc:
            raise NotOpenYet(str(exc)) from exc
        if changed:
            log.info("reported", extra={"action": str(message.command.action), "by": message.by.label})

    def issue_control_slip(self, message: IssueControlSlip) -> None:
        """Form 05 recorded once on the instance with ``dossier.form_issued`` in the same write's
        outbox. The sealed form the first attempt stored is the one a retried write (it met another
        writer: a version conflict) records — rendering, sealing and storing it again would cost a
        form and a seal each time. A redelivered message finds it recorded and changes nothing; one
        redelivered after the store but before the write may leave one unreferenced object."""
        if self._control_slips is None:
            raise RuntimeError("this routing worker has no control slip renderer (object storage, sealer)")
        issue = self._control_slips
        stored: dict[str, Any] = {}

        def attempt(uow: UnitOfWork) -> bool:
            try:
                found = self._instances.get(dossier_id=message.dossier_id)
            except NotFound as exc:
                raise NotOpenYet(str(exc)) from exc
            instance, now = found.instance, self._instances.clock()

            def form() -> dict[str, Any]:
                if not stored:
                    stored.update(issue(instance))
                return stored

            if not instance.issue_control_slip(form, now):
                return False  # issued before
            self._instances.stage(uow, found, now, message.traceparent)
            uow.commit(completes_message=True)  # the form's one write: the message's record rides along
            return True

        if self._instances.run(attempt, what=f"issuing form 05 of {message.dossier_id}"):
            log.info("form issued", extra={"form": "05"})

    def bus(self) -> MessageBus:
        return MessageBus({OpenWorkflow: self.open, ReportToWorkflow: self.report,
                           IssueControlSlip: self.issue_control_slip})
