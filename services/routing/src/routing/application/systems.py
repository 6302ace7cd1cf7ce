"""What routing's worker does with what other services report (the messages on ``routing.<area>``):
each becomes one action on the dossier's instance, by the service that reported it (never an
official), applied once however often it arrives:

* :class:`OpenWorkflow` (intake's ``routing.route_dossier``): open the instance;
* :class:`ReportToWorkflow` with ``Signed`` (signing's ``routing.signing_completed``): the draft is
  signed → the sign and seal steps are done, the return step is active, the result is ready (9);
  with ``SupplementReceived`` (intake's ``dossier.supplemented``): processing resumes, the due date
  moved by the procedure's policy, the new documents join the dossier; with ``Withdrawn`` (intake's
  ``dossier.withdrawn``): the applicant withdrew (7).

A report that does not fit the instance's state (a withdrawal after the result was returned) is
refused for good and parked in the queue's .dlq for an operator, never dropped; a report about an
instance not opened yet is retried (its route_dossier message may still be on its way). How a
delivery becomes one of these messages is the worker's edge (``routing.entrypoints.messages``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from motcua.errors import NotFound
from motcua.messagebus import MessageBus
from routing.application.repository import Instances
from routing.domain.actions import Actor, Command

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


class RoutingWork:
    """Handles :class:`OpenWorkflow` and :class:`ReportToWorkflow`."""

    def __init__(self, instances: Instances):
        self._instances = instances

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

    def bus(self) -> MessageBus:
        return MessageBus({OpenWorkflow: self.open, ReportToWorkflow: self.report})
