"""Signing's worker use case on fake ports (in-memory store and objects, a recording publisher, a
fake signer), fed through the worker's own decoding of work messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from motcua_dev.testing import (
    MemoryObjects,
    handle_as_a_worker,
    memory_units_of_work,
    sqlite_units_of_work,
    work_data,
)

from motcua.errors import Unavailable
from motcua.events.v1 import events_pb2
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import build_work
from motcua.objects import StorageUnavailable
from motcua.store import SqliteStore
from motcua.work.v1 import work_pb2
from signing.adapters.records import SigningRecord
from signing.application.sign_document import SignDocument
from signing.application.signing_work import SignDraft, SigningWork
from signing.domain import AppliedSignature, SignedPdf, SignerRole, SigningRefused
from signing.entrypoints.messages import INBOUND

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n" \
      b"trailer<</Root 1 0 R>>\n%%EOF\n"
CODE = "000.01.06.H56-261201-0001"


ENROLLED = {("personal", "sign-bim-son"): "Nguyễn Văn An", ("seal", "bim-son"): "UBND thị xã Bỉm Sơn",
            ("seal", "phuong-ba-dinh"): "UBND phường Ba Đình"}
REVOKED = {("personal", "sign-revoked")}


def fake_signer(calls: list):
    """A token with the keys of ENROLLED; REVOKED ones are refused, as the real key source does."""
    def sign(pdf: bytes, request) -> SignedPdf:
        calls.append(request.request_id)
        names = []
        for ref in request.signers:
            key = (ref.role.value, ref.signer_id)
            if key in REVOKED:
                raise SigningRefused(f"the certificate CN=x (serial 1f) of official {ref.signer_id!r} is revoked")
            if key not in ENROLLED:
                raise SigningRefused(f"{ref.role.value} {ref.signer_id!r} has no enrolled signing key")
            names.append(ENROLLED[key])
        return SignedPdf(data=pdf + b"% signed\n", level="B-LT", signatures=(
            AppliedSignature(SignerRole.PERSONAL, "Sig_Official", names[0], T0, T0),
            AppliedSignature(SignerRole.SEAL, "Sig_Seal", names[1], T0, T0)))
    return sign


@pytest.fixture
def worker():
    return make_worker(*memory_units_of_work())


def make_worker(uows, publisher):
    objects, calls = MemoryObjects(), []
    from motcua.objects import ObjectRef

    sign_document = SignDocument(lambda ref: objects.get(ObjectRef.from_dict(ref)),
                                 lambda prefix, data, media: objects.put_bytes(prefix, data, media).to_dict(),
                                 fake_signer(calls))
    dispatch = INBOUND.dispatch(MessageBus({SignDraft: SigningWork(uows, sign_document, SigningRecord,
                                                                   clock=lambda: T0)}))
    return uows, publisher, objects, calls, dispatch


def request(objects: MemoryObjects, content: bytes = PDF, **body) -> Delivery:
    draft = objects.put_bytes(f"routing/{CODE}", content, "application/pdf").to_dict()
    values = {"signing_request_id": "d1:sign:1", "dossier_id": "d1", "code": CODE, "area": "bim-son",
              "receiving_unit": "phuong-ba-dinh", "document": {**draft, "name": "du-thao.pdf"},
              "official_id": "sign-bim-son", "seal_unit": "bim-son", "seal_unit_id": "000.00.06.H56", **body}
    work = build_work(service="signing", area="bim-son", type="signing.sign_document", id="d1:sign:1",
                      data=work_data(work_pb2.SignDocument, values))
    out = work.to_outgoing()
    return Delivery(out.body, out.headers, out.content_type, "signing.bim-son")


def test_a_draft_is_signed_once_and_routing_is_answered_in_the_dossier_s_area(worker):
    uows, publisher, objects, calls, dispatch = worker
    delivery = request(objects)
    dispatch(delivery)
    dispatch(delivery)  # redelivered
    assert calls == ["d1:sign:1"]
    assert publisher.types() == ["vn.motcua.document.signed.v1", "routing.signing_completed"]
    assert [m.routing_key for m in publisher.published] == ["bim-son.document.signed", "routing.bim-son"]
    record = uows.store.collection(SigningRecord).get("d1:sign:1")
    assert objects.objects[record["signed"]["key"]].endswith(b"% signed\n")
    event = events_pb2.DocumentSigned.FromString(publisher.published[0].body)
    assert (list(event.signers), event.level, event.official_id, event.seal_unit) == (
        ["Nguyễn Văn An", "UBND thị xã Bỉm Sơn"], "B-LT", "sign-bim-son", "bim-son")
    assert event.signed_at.ToDatetime(tzinfo=UTC) == T0  # the seal's timestamp token


@pytest.mark.parametrize("change", [{}, {"official_id": "sign-nobody"}], ids=["signed", "refused"])
def test_a_request_s_processed_record_rides_with_its_answer(tmp_path, change):
    """On SQLite, as the worker runs it: the answer (signed or refused) and the processed record
    in one commit, then the outbox's: 2 commits, was 3; a redelivery is skipped."""
    store = SqliteStore(tmp_path / "signing.sqlite3")
    try:
        uows, publisher, objects, calls, dispatch = make_worker(*sqlite_units_of_work(store))
        delivery = request(objects, **change)
        assert handle_as_a_worker(uows, dispatch, delivery) == ("processed", 2, True)
        assert handle_as_a_worker(uows, dispatch, delivery) == ("duplicate", 0, True)
        assert uows.store.collection(SigningRecord).count({}) == 1 and len(publisher.published) == (2 - bool(change))
    finally:
        store.close()


def test_the_seal_is_the_issuing_unit_s_named_by_the_request(worker):
    uows, publisher, objects, calls, dispatch = worker
    dispatch(request(objects, seal_unit="phuong-ba-dinh"))
    event = events_pb2.DocumentSigned.FromString(publisher.published[0].body)
    assert list(event.signers) == ["Nguyễn Văn An", "UBND phường Ba Đình"]


@pytest.mark.parametrize("change, words", [
    ({"official_id": "sign-nobody"}, "no enrolled signing key"),
    ({"seal_unit": "xa-chua-dang-ky"}, "no enrolled signing key"),
    ({"official_id": "sign-revoked"}, "is revoked"),
    ({"official_id": ""}, "names no official"),
], ids=["official-not-enrolled", "unit-not-enrolled", "revoked", "no-official"])
def test_a_refused_signer_answers_routing_with_the_reason_once_and_stores_nothing_signed(worker, change, words):
    uows, publisher, objects, calls, dispatch = worker
    delivery = request(objects, **change)
    dispatch(delivery)
    dispatch(delivery)  # redelivered: answered once, from the record
    assert publisher.types() == ["routing.signing_failed"]
    failed = work_pb2.SigningFailed.FromString(publisher.published[0].body)
    assert words in failed.reason and failed.dossier_id == "d1"
    record = uows.store.collection(SigningRecord).get("d1:sign:1")
    assert record["outcome"] == "refused" and not record.get("signed")
    assert [k for k in objects.objects if k.startswith("signing/")] == []


NOT_A_PDF_REF = {"key": "routing/x/y", "sha256": "zz", "size": 1, "media_type": "text/plain"}


@pytest.mark.parametrize("change, content", [({"document": NOT_A_PDF_REF}, PDF), ({}, b"GIF89a not a pdf"),
                                             ({"code": "not a code"}, PDF)],
                         ids=["malformed-document", "not-a-pdf", "bad-code"])
def test_a_request_that_can_never_be_signed_is_parked_and_nothing_is_stored_or_sent(worker, change, content):
    uows, publisher, objects, calls, dispatch = worker
    delivery = request(objects, content, **change)
    with pytest.raises(PermanentFailure):
        dispatch(delivery)
    assert uows.store.collection(SigningRecord).get("d1:sign:1") is None and publisher.published == []


@pytest.mark.parametrize("error", [
    StorageUnavailable("127.0.0.1:8333", "MaxRetryError"),  # the draft cannot be read, the result not stored
    Unavailable("the HSM is out of reach"),
], ids=type)
def test_an_unavailable_dependency_is_retried_not_parked(worker, error):
    """Regression (issue 9): every DomainError used to park the work, so an S3 outage while signing
    parked it in signing.<area>.dlq on its first try."""
    uows, publisher, objects, calls, dispatch = worker

    def unavailable(request):
        raise error

    failing = INBOUND.dispatch(MessageBus({SignDraft: SigningWork(uows, unavailable, SigningRecord)}))
    with pytest.raises(Unavailable) as raised:
        failing(request(objects))
    assert not isinstance(raised.value, PermanentFailure)
    assert publisher.published == []
