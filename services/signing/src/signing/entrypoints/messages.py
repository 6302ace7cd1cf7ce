"""What signing's worker takes from ``signing.<area>``, as the application's messages."""

from __future__ import annotations

from motcua.messaging.envelope import WorkMessage
from motcua.messaging.inbound import Inbound
from motcua.protobufs import document_ref_dict
from motcua.work.v1 import work_pb2
from signing.application.signing_work import SignDraft


def sign_draft(work: WorkMessage) -> SignDraft:
    sign = work.decode(work_pb2.SignDocument)
    return SignDraft(signing_request_id=sign.signing_request_id, dossier_id=sign.dossier_id, code=sign.code,
                     area=sign.area, receiving_unit=sign.receiving_unit, document=document_ref_dict(sign.document),
                     official_id=sign.official_id, seal_unit=sign.seal_unit, seal_unit_id=sign.seal_unit_id,
                     traceparent=work.traceparent)


INBOUND = Inbound(work={"signing.sign_document": sign_draft})
