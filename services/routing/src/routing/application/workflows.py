"""Routing's use cases for the skeleton: open a dossier's workflow and take it to signing; take the
signed result back, mark it ready and return it. Every change is one write carrying its events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from motcua.events.v1 import events_pb2
from motcua.logs import bind
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import InvalidEnvelope, build_event, build_work, parse_work
from motcua.messaging.outbox import Outbox, add_messages
from motcua.objects import ObjectStore
from motcua.protobufs import document_ref, timestamp
from motcua.store.port import Collection, DuplicateKey, Store
from routing.adapters.drafts import render_draft
from routing.adapters.records import WorkflowRecord, from_document, to_document
from routing.domain.workflow import Fact, Workflow

log = logging.getLogger(__name__)
SOURCE = "/motcua/routing"
OBJECT_PREFIX = "routing"
AUTOMATIC_ACTORS = {"receive": "desk", "review": "specialist", "approve": "leader"}


class Workflows:
    def __init__(self, store: Store, objects: ObjectStore, outbox: Outbox,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._workflows: Collection = store.collection(WorkflowRecord)
        self._objects = objects
        self._outbox = outbox
        self._clock = clock

    def dispatch(self, delivery: Delivery) -> None:
        try:
            work = parse_work(delivery.body, delivery.headers, delivery.queue)
        except InvalidEnvelope as exc:
            raise PermanentFailure(str(exc)) from exc
        handler = {"routing.route_dossier": self.route_dossier,
                   "routing.signing_completed": self.signing_completed}.get(work.type)
        if handler is None:
            raise PermanentFailure(f"unknown work type {work.type!r}")
        with bind(dossier_code=work.body.get("code"), district=work.body.get("district")):
            handler(work.body, work.traceparent)

    def route_dossier(self, body: Mapping[str, Any], traceparent: str) -> None:
        existing = self._workflows.get(body["dossier_id"])
        if existing is not None:  # a repeated message: finish publishing, change nothing
            self._outbox.flush(self._workflows, existing)
            return
        now = self._clock()
        workflow = Workflow.open(
            dossier_id=body["dossier_id"], code=body["code"], district=body["district"],
            procedure_code=body["procedure_code"], unit_id=body["unit_id"],
            received_at=datetime.fromisoformat(body["received_at"]), documents=list(body["documents"]),
            now=now)
        while workflow.current is not None and workflow.current.name in AUTOMATIC_ACTORS:
            workflow.complete_current(AUTOMATIC_ACTORS[workflow.current.name], now)
        draft = self._objects.put_bytes(
            f"{OBJECT_PREFIX}/{workflow.dossier_id}",
            render_draft(code=workflow.code, procedure_code=workflow.procedure_code,
                         unit_id=workflow.unit_id, title="QUYẾT ĐỊNH giải quyết thủ tục hành chính",
                         dated=workflow.received_at),
            "application/pdf").to_dict()
        workflow.request_signing(f"sign:{workflow.dossier_id}", {**draft, "name": "ket-qua.pdf"})
        messages = self._events(workflow, traceparent)
        messages.append(build_work(
            service="signing", district=workflow.district, type="signing.sign_document",
            id=workflow.signing_request_id, traceparent=traceparent,
            body={"signing_request_id": workflow.signing_request_id, "dossier_id": workflow.dossier_id,
                  "code": workflow.code, "district": workflow.district, "document": workflow.draft}))
        try:
            stored = self._workflows.insert(add_messages(to_document(workflow), messages))
        except DuplicateKey:
            return  # a concurrent delivery of the same message stored it first
        log.info("workflow opened and sent to signing")
        self._outbox.flush(self._workflows, stored)

    def signing_completed(self, body: Mapping[str, Any], traceparent: str) -> None:
        doc = self._workflows.get(body["dossier_id"])
        if doc is None:
            raise LookupError(f"no workflow for dossier {body['dossier_id']} yet")  # retried
        workflow = from_document(doc)
        now = self._clock()
        if not workflow.signed(body["signing_request_id"], dict(body["signed"]), list(body["signers"]), now):
            self._outbox.flush(self._workflows, doc)
            return
        workflow.return_result("electronic", now)
        stored = self._workflows.replace(
            add_messages({**doc, **to_document(workflow)}, self._events(workflow, traceparent)),
            workflow.version)
        log.info("result ready and returned")
        self._outbox.flush(self._workflows, stored)

    def _events(self, workflow: Workflow, traceparent: str) -> list:
        return [self._event(workflow, fact, traceparent) for fact in workflow.facts]

    def _event(self, w: Workflow, fact: Fact, traceparent: str):
        common = {"dossier_id": w.dossier_id, "code": w.code, "district": w.district}
        at = fact.at or self._clock()
        if fact.kind == "assigned":
            name, data = "dossier.assigned", events_pb2.DossierAssigned(
                **common, step=fact.step, role=fact.role, unit_id=w.unit_id, assigned_at=timestamp(at),
                status=int(w.status))
        elif fact.kind == "step_completed":
            name, data = "dossier.step_completed", events_pb2.StepCompleted(
                **common, step=fact.step, role=fact.role, actor=fact.actor, completed_at=timestamp(at))
        elif fact.kind == "signing_requested":
            name, data = "dossier.signing_requested", events_pb2.SigningRequested(
                **common, signing_request_id=w.signing_request_id, draft=document_ref(w.draft or {}))
        elif fact.kind == "result_ready":
            name, data = "dossier.result_ready", events_pb2.ResultReady(
                **common, result=document_ref(w.result or {}), ready_at=timestamp(at), status=9)
        elif fact.kind == "returned":
            name, data = "dossier.returned", events_pb2.DossierReturned(
                **common, procedure_code=w.procedure_code,
                documents=[document_ref(d) for d in w.documents], result=document_ref(w.result or {}),
                returned_at=timestamp(at), status=10, received_at=timestamp(w.received_at))
        else:  # pragma: no cover - the domain defines the kinds
            raise ValueError(fact.kind)
        return build_event(name=name, data=data, source=SOURCE, subject=w.code, district=w.district,
                           traceparent=traceparent)
