"""Dossier codes never repeat and leave no gap, also with several intake api processes writing the
same store at once (an atomic counter per unit per day)."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import grpc
import pytest
from motcua_dev import infra
from motcua_dev.devstack import Stack
from motcua_dev.harness import private_vhost, sample_pdf
from motcua_dev.platform import api_spec

from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.types.v1 import types_pb2

pytestmark = pytest.mark.e2e

PROCESSES = 4
DOSSIERS = 1000
CODE = re.compile(r"^(?P<unit>\d{3}\.\d{2}\.\d{2}\.H56)-(?P<day>\d{6})-(?P<seq>\d{4})\Z")


def test_four_api_processes_number_a_thousand_dossiers_without_duplicate_or_gap(
        tmp_path, amqp_uri, s3_endpoint):
    pdf = sample_pdf("Don de nghi")
    with private_vhost(amqp_uri) as vhost:
        env = {"MOTCUA_AMQP_URI": vhost, "MOTCUA_DATA_DIR": str(tmp_path / "data"),
               **s3_endpoint.env(f"codes-{uuid.uuid4().hex[:8]}")}
        ports = [infra.free_port() for _ in range(PROCESSES)]
        specs = [api_spec("intake", env, port, name=f"intake-api-{i}") for i, port in enumerate(ports)]
        with Stack(specs, tmp_path / "logs") as stack:
            stack.wait_ready(timeout=120)
            channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for port in ports]
            stubs = [intake_pb2_grpc.IntakeServiceStub(channel) for channel in channels]

            def submit(job: tuple[int, intake_pb2_grpc.IntakeServiceStub]) -> str:
                n, stub = job
                request = intake_pb2.SubmitDossierRequest(
                    request_id=str(uuid.uuid4()), procedure_code="1.004616", district="bim-son",
                    applicant=types_pb2.Applicant(full_name=f"Hộ kinh doanh {n}", identity_number=f"038{n:09d}"),
                    documents=[intake_pb2.Document(name="don.pdf", media_type="application/pdf", content=pdf,
                                                   component="don-de-nghi")])
                return stub.SubmitDossier(request, timeout=60).code

            with ThreadPoolExecutor(32) as pool:
                codes = list(pool.map(submit, zip(range(DOSSIERS), cycle(stubs), strict=False)))
            for channel in channels:
                channel.close()

    assert len(set(codes)) == DOSSIERS, "a code was given twice"
    parsed = [CODE.match(code) for code in codes]
    assert all(parsed), [c for c, m in zip(codes, parsed, strict=True) if not m][:5]
    assert {m["unit"] for m in parsed} == {"000.00.06.H56"}
    by_day: dict[str, list[int]] = {}
    for match in parsed:
        by_day.setdefault(match["day"], []).append(int(match["seq"]))
    for day, sequences in by_day.items():  # one day, or two if the run crossed midnight in Vietnam
        assert sorted(sequences) == list(range(1, len(sequences) + 1)), f"gap on {day}"
