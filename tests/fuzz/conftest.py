"""The fuzz suite's platform: every service as processes (officials=None: nobody acts but the
fuzzer) on a private vhost, with a few desk dossiers and one upload seeded so that generated
requests can name real ones, and the report of what every RPC answered."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from motcua_dev.fuzzing import PROFILE_ENV, fuzz_settings
from motcua_dev.harness import SAMPLE_PROCEDURES, Platform, running_platform, sample_pdf, sample_request, sample_units
from motcua_dev.testing import S3Endpoint

from motcua.intake.v1 import intake_pb2, intake_pb2_grpc

REPORT = Path(os.environ.get("MOTCUA_FUZZ_REPORT", "var/fuzz/report.json"))  # cases and statuses per RPC
# The records an api writes for a request, by service: (table, columns that name the record).
STORED = {"intake": (("dossiers", ("code",)), ("uploads", ())), "routing": (("workflow_instances", ("code",)),),
          "notify": (("subscriptions", ()), ("webhook_deliveries", ())),
          "signing": (("signing_requests", ("code",)),), "archive": (("ledger", ("code",)),)}
SEEDS = [("bim-son", "1.004616"), ("phuong-ba-dinh", "1.001193"), ("xa-xuan-hoa", "1.001776"),
         ("van-phong-dang-ky-dat-dai", "1.004227")]


@dataclass
class Fuzz:
    platform: Platform
    hints: dict[str, list[Any]]
    calls: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    messages: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def address(self, service: str) -> str:
        return {"intake": self.platform.intake_address, "routing": self.platform.routing_address,
                "notify": self.platform.notify_address, "signing": self.platform.signing_address,
                "archive": self.platform.archive_address}[service]

    def snapshot(self, service: str, names: tuple[str, ...]) -> dict[str, Any]:
        """What the service's store holds that a request could have added or changed: each
        api-written table's row count, and the version of every record the request names."""
        path = self.platform.data_dir / f"{service}.sqlite3"
        seen: dict[str, Any] = {}
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            for table, keys in STORED[service]:
                try:
                    seen[table] = db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                    for key in keys:
                        for name in names:
                            rows = db.execute(f'SELECT _id, version FROM "{table}" WHERE _id = ? OR '
                                              f"json_extract(doc, '$.{key}') = ?", (name, name)).fetchall()
                            seen[f"{table}:{name}"] = sorted(rows)
                except sqlite3.OperationalError:  # not created yet
                    seen[table] = 0
        return seen

    def processes_alive(self) -> list[str]:
        return [name for name in self.platform.stack.specs if not self.platform.stack.alive(name)]

    def report(self) -> dict[str, Any]:
        return {"calls": {m: dict(c) for m, c in sorted(self.calls.items())},
                "amqp": {q: dict(c) for q, c in sorted(self.messages.items())}}


def _seed(platform: Platform) -> dict[str, list[Any]]:
    """Desk dossiers of every level (status 2, routed: nothing the fuzzer sends can change them
    without their applicants' identity numbers, which it is not given) and one upload."""
    from intake.adapters.records import DossierRecord
    from routing.adapters.instances import InstanceRecord

    with grpc.insecure_channel(platform.intake_address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        answers = [stub.SubmitDossier(sample_request(unit, 900 + n, procedure_code=code), timeout=60)
                   for n, (unit, code) in enumerate(SEEDS)]
        pdf = sample_pdf("fuzz upload")
        upload = stub.UploadDocument(iter([
            intake_pb2.UploadDocumentRequest(header=intake_pb2.UploadHeader(request_id=str(uuid.uuid4()),
                                                                            media_type="application/pdf")),
            intake_pb2.UploadDocumentRequest(chunk=pdf)]), timeout=60)
    deadline = time.monotonic() + 120
    while platform.count("routing", InstanceRecord) < len(SEEDS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert platform.count("routing", InstanceRecord) == len(SEEDS), platform.progress({a.code for a in answers})
    assert platform.count("intake", DossierRecord) == len(SEEDS)
    codes = [a.code for a in answers]
    components = sorted({c for comps, _ in SAMPLE_PROCEDURES.values() for c in comps})
    return {
        "code": codes, "dossier_id": [a.dossier_id for a in answers],
        "procedure_code": list(SAMPLE_PROCEDURES), "receiving_unit": list(sample_units()),
        "district": list(sample_units()), "unit": list(sample_units()), "target_unit": list(sample_units()),
        "parent": list(sample_units()), "slug": list(sample_units()), "area": ["bim-son", "ba-thuoc", "thanh-hoa"],
        "sector": ["ho-tich", "hoat-dong-xay-dung", "dat-dai"],
        "unit_id": ["000.00.06.H56", "000.01.06.H56", "000.00.00.H56"],
        "media_type": ["application/pdf", "image/png", "image/jpeg", "text/plain"],
        "component": components, "upload_id": [upload.upload_id], "sha256": [upload.sha256, "0" * 64],
        "identity_number": ["038000000001", "000000000000"], "full_name": ["Nguyễn Văn A"],
        "email": ["a@example.vn"], "content": [pdf],
        "roles": ["receive", "assign", "review", "approve", "sign", "seal", "return"],
        "action": ["claim", "complete", "forward", "transfer", "return_previous", "request_supplement",
                   "request_payment", "record_payment", "refuse", "approve", "return_result", "signed",
                   "apologize", "withdrawn", "teleport"],
        "official_id": ["receive-bim-son"], "channel": ["desk", "post", "electronic", "online"],
        "page_token": ["", "eyJ9"], "reasons": ["thiếu giấy tờ"],
    }


@pytest.fixture(scope="session")
def fuzz(tmp_path_factory, amqp_uri: str, s3_endpoint: S3Endpoint) -> Iterator[Fuzz]:
    workdir = tmp_path_factory.mktemp("fuzz-platform")
    bucket = f"fuzz-{uuid.uuid4().hex[:10]}"
    with running_platform(workdir, amqp_uri, s3_endpoint.env(bucket), officials=None) as platform:
        state = Fuzz(platform, _seed(platform))
        yield state
        report = state.report()
        report["profile"] = os.environ.get(PROFILE_ENV, "short")
        report["examples_per_test"] = fuzz_settings().max_examples
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print(f"\nfuzz report ({PROFILE_ENV}: {fuzz_settings().max_examples} examples per test): {REPORT}")
