"""What signing's worker takes from ``signing.<area>``, as the application's messages."""

from __future__ import annotations

from motcua.messaging.envelope import WorkMessage
from motcua.messaging.inbound import Inbound
from signing.application.signing_work import SignDraft


def sign_draft(work: WorkMessage) -> SignDraft:
    body = work.body
    return SignDraft(signing_request_id=body["signing_request_id"], dossier_id=body["dossier_id"], code=body["code"],
                     area=body["area"], receiving_unit=body.get("receiving_unit") or "",
                     document=dict(body["document"]), traceparent=work.traceparent)


INBOUND = Inbound(work={"signing.sign_document": sign_draft})
