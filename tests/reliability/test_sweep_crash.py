"""Kill -9 the routing worker in the middle of an SLA sweep and count that every overdue dossier got
its alerts and its apology (form 04) exactly once.

Routing's store is seeded, before the platform starts, with open dossiers received five weeks ago
(by the domain: ``Instances``' own documents, at a clock in the past), so all of them are overdue
and due for a look. The worker sweeps them one claim at a time; killed mid-sweep, the dossiers it
had claimed but not written are swept again once their lease runs out.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from collections import Counter

import pytest
from motcua_dev.harness import Platform, running_platform
from motcua_dev.testing import S3Endpoint

from motcua.events.v1 import events_pb2
from motcua.objects import ObjectRef
from motcua.protobufs import datetime_of, document_ref_dict
from motcua.store.sqlite import SqliteStore
from motcua.worktime import vietnam_calendar

pytestmark = pytest.mark.reliability

DOSSIERS = 60
APOLOGY = "vn.motcua.dossier.apology_issued.v1"
OVERDUE = "vn.motcua.dossier.overdue.v1"
UNIT_ID = "000.00.06.H56"
# Bỉm Sơn's building permit as intake resolves it: 15 working days, all steps at the town.
PROCESS = {
    "steps": [{"role": role, "unit": "bim-son", "unit_id": UNIT_ID, "level": "district", "share": share}
              for role, share in (("receive", 0.05), ("assign", 0.05), ("review", 0.55), ("approve", 0.15),
                                  ("sign", 0.1), ("seal", 0.05), ("return", 0.05))],
    "time_type": "working_days", "duration_hours": 120,
}


def seed(path, now: dt.datetime) -> set[str]:
    """Open DOSSIERS instances received at ``now`` (weeks ago) straight into routing's store."""
    from routing.adapters.instances import InstanceRecord, to_document
    from routing.domain.instance import WorkflowInstance
    from routing.domain.process import ProcessDefinition

    calendar, definition = vietnam_calendar(), ProcessDefinition.from_dict(PROCESS)
    store = SqliteStore(path)
    codes = set()
    try:
        instances = store.collection(InstanceRecord)
        for n in range(1, DOSSIERS + 1):
            code = f"{UNIT_ID}-{now:%y%m%d}-{n:04d}"
            instance = WorkflowInstance.open(
                definition=definition, dossier_id=str(uuid.uuid4()), code=code, receiving_unit="bim-son",
                area="bim-son",
                procedure_code="1.004616", received_at=now, due_at=definition.due_from(now, calendar), now=now,
                calendar=calendar)
            instances.insert(to_document(instance, now))
            codes.add(code)
    finally:
        store.close()
    return codes


def test_routing_worker_killed_in_the_middle_of_a_sweep(tmp_path, amqp_uri: str, s3_endpoint: S3Endpoint):
    received = (dt.datetime.now(dt.UTC) - dt.timedelta(days=35)).replace(microsecond=0)
    (tmp_path / "data").mkdir()
    codes = seed(tmp_path / "data" / "routing.sqlite3", received)
    bucket = f"rel-{uuid.uuid4().hex[:10]}"
    env = {"MOTCUA_SLA_SWEEP_INTERVAL_S": "0.5", "MOTCUA_SLA_SWEEP_LEASE_S": "5"}
    with running_platform(tmp_path, amqp_uri, s3_endpoint.env(bucket), extra_env=env, officials=None) as platform:
        assert platform.events.wait_until(lambda _: platform.events.count(APOLOGY) >= 15, timeout=120), \
            platform.progress(set())
        platform.stack.kill("routing-worker")
        done = platform.events.count(APOLOGY)
        assert done < DOSSIERS, "the sweep was over before routing was killed: nothing was tested"
        time.sleep(1)
        platform.stack.restart("routing-worker")
        platform.stack.wait_ready(timeout=60, names=["routing-worker"])

        every = lambda _: platform.events.count(APOLOGY) >= DOSSIERS  # noqa: E731
        assert platform.events.wait_until(every, timeout=300), f"{platform.events.count(APOLOGY)} apologies"
        time.sleep(2)  # anything issued twice would have been published by now
        print(f"\nkilled after {done} of {DOSSIERS} apologies; all issued after the restart")
        assert_swept_exactly_once(platform, codes)
        assert_form_04(platform, s3_endpoint, tmp_path)


def assert_swept_exactly_once(platform: Platform, codes: set[str]) -> None:
    from routing.adapters.instances import InstanceRecord

    by_code = platform.events.by_subject()
    for code in codes:
        kinds = platform.events.distinct_types(code)
        assert kinds.get(APOLOGY) == 1, (code, kinds)
        overdue = Counter(events_pb2.DossierOverdue.FromString(e.body).scope
                          for e in {e.id: e for e in by_code[code] if e.type == OVERDUE}.values())
        assert overdue == {"step": 1, "dossier": 1}, (code, overdue)
    store = SqliteStore(platform.data_dir / "routing.sqlite3")
    try:
        for doc in store.collection(InstanceRecord).find({"receiving_unit": "bim-son", "status": 4}):
            assert len(doc["instance"]["apologies"]) == 1, doc["code"]
            assert doc["next_check_at"] is None or doc["next_check_at"] > dt.datetime.now(dt.UTC) - dt.timedelta(
                seconds=5), doc["code"]  # nothing left for a sweep to do
    finally:
        store.close()


def assert_form_04(platform: Platform, s3_endpoint: S3Endpoint, tmp_path) -> None:
    event = next(e for e in platform.events.events if e.type == APOLOGY)
    apology = events_pb2.ApologyIssued.FromString(event.body)
    assert apology.late and datetime_of(apology.new_due_at) > datetime_of(apology.issued_at)
    pdf = s3_endpoint.store(platform.env["MOTCUA_S3_BUCKET"]).get(ObjectRef.from_dict(document_ref_dict(apology.form)))
    (tmp_path / "form-04.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(tmp_path / "form-04.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in text and apology.code in text
