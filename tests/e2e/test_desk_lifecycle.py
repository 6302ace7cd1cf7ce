"""The desk's side of a dossier, through the real services: an online dossier waits (status 1),
is accepted with a receipt (form 01) and an appointment, or refused with form 03; anyone can track
it by code without seeing personal data; withdrawal is allowed only where the status table says."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
from motcua_dev.harness import Platform, archived, sample_request

from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.objects import ObjectRef
from motcua.protobufs import datetime_of, document_ref_dict

pytestmark = pytest.mark.e2e


def stub(platform: Platform) -> intake_pb2_grpc.IntakeServiceStub:
    return intake_pb2_grpc.IntakeServiceStub(grpc.insecure_channel(platform.intake_address))


def online(platform: Platform, n: int) -> intake_pb2.SubmitDossierResponse:
    request = sample_request("bim-son", n, documents=2)
    request.channel = intake_pb2.CHANNEL_ONLINE
    return stub(platform).SubmitDossier(request, timeout=30)


def wait_for(fetch, predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def pdf_text(platform: Platform, s3_endpoint, ref, tmp_path: Path) -> str:
    data = s3_endpoint.store(platform.env["MOTCUA_S3_BUCKET"]).get(ObjectRef.from_dict(document_ref_dict(ref)))
    path = tmp_path / "form.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_an_online_dossier_waits_for_the_desk_then_is_accepted_with_a_receipt(platform, s3_endpoint, tmp_path):
    answer = online(platform, 701)
    assert answer.status == 1 and not answer.HasField("received_at")
    intake = stub(platform)
    assert platform.events.wait_until(
        lambda _: "vn.motcua.dossier.submitted.v1" in platform.events.distinct_types(answer.code), 30)
    time.sleep(1)
    assert "vn.motcua.dossier.received.v1" not in platform.events.distinct_types(answer.code)

    accept = intake_pb2.AcceptDossierRequest(request_id=str(uuid.uuid4()), code=answer.code,
                                            official="Lê Thị Mai")
    accepted = intake.AcceptDossier(accept, timeout=30).dossier
    assert accepted.status == 2 and accepted.HasField("due_at")
    assert datetime_of(accepted.due_at) > datetime_of(accepted.received_at)
    assert intake.AcceptDossier(accept, timeout=30).dossier.due_at == accepted.due_at  # a retry
    with pytest.raises(grpc.RpcError) as error:  # a second, different acceptance
        intake.AcceptDossier(intake_pb2.AcceptDossierRequest(request_id=str(uuid.uuid4()), code=answer.code,
                                                             official="Lê Thị Mai"), timeout=30)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    assert platform.events.wait_until(archived({answer.code}), timeout=120), platform.progress({answer.code})
    dossier = wait_for(lambda: intake.GetDossier(intake_pb2.GetDossierRequest(code=answer.code)).dossier,
                       lambda d: d.HasField("receipt") and d.status == 10)
    assert dossier.HasField("receipt"), "form 01 was not issued"
    text = pdf_text(platform, s3_endpoint, dossier.receipt, tmp_path)
    assert answer.code in text and "Lê Thị Mai" in text and "Công dân 701" in text

    tracked = intake.TrackDossier(intake_pb2.TrackDossierRequest(code=answer.code), timeout=10)
    assert tracked.status == 10 and tracked.due_at == dossier.due_at
    assert [s.action for s in tracked.steps] == ["submitted", "received", "processing", "result ready",
                                                 "result returned"]
    assert "701" not in str(tracked) and "example.vn" not in str(tracked)  # no personal data

    with pytest.raises(grpc.RpcError) as error:
        intake.WithdrawDossier(intake_pb2.WithdrawDossierRequest(
            request_id=str(uuid.uuid4()), code=answer.code, reason="Không cần nữa",
            identity_number="038000000701"), timeout=10)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "status 10" in error.value.details()


def test_an_online_dossier_refused_gets_form_03_and_goes_no_further(platform, s3_endpoint, tmp_path):
    answer = online(platform, 702)
    intake = stub(platform)
    with pytest.raises(grpc.RpcError) as error:
        intake.RefuseDossier(intake_pb2.RefuseDossierRequest(request_id=str(uuid.uuid4()), code=answer.code,
                                                             official="Lê Thị Mai"), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "reasons" in error.value.details()

    refused = intake.RefuseDossier(intake_pb2.RefuseDossierRequest(
        request_id=str(uuid.uuid4()), code=answer.code, official="Lê Thị Mai",
        reasons=["Thiếu bản vẽ thiết kế có chữ ký của chủ đầu tư"]), timeout=10).dossier
    assert refused.status == 3 and list(refused.refusal_reasons)
    dossier = wait_for(lambda: intake.GetDossier(intake_pb2.GetDossierRequest(code=answer.code)).dossier,
                       lambda d: d.HasField("receipt"))
    text = pdf_text(platform, s3_endpoint, dossier.receipt, tmp_path)
    assert "Thiếu bản vẽ thiết kế có chữ ký của chủ đầu tư" in text
    assert platform.events.wait_until(
        lambda _: "vn.motcua.dossier.refused.v1" in platform.events.distinct_types(answer.code), 30)
    assert "vn.motcua.dossier.assigned.v1" not in platform.events.distinct_types(answer.code)
    with pytest.raises(grpc.RpcError) as error:
        intake.AcceptDossier(intake_pb2.AcceptDossierRequest(request_id=str(uuid.uuid4()), code=answer.code,
                                                             official="Lê Thị Mai"), timeout=10)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_tracking_an_unknown_code_is_not_found(platform):
    with pytest.raises(grpc.RpcError) as error:
        stub(platform).TrackDossier(intake_pb2.TrackDossierRequest(code="000.00.06.H56-200101-9999"), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
