"""The S3 server stopped for about 15 s while dossiers are submitted and signed, then started again
(DESIGN.md rules 1 and 3): a submission while it is down fails cleanly, UNAVAILABLE to a stock
grpcio client, and leaves nothing behind (no dossier record, no event, no document); the work the
outage interrupts (the draft an official approves, signing's read of the draft and write of the
signed PDF, archive's package, intake's receipt) is retried and every dossier accepted completes
exactly once once S3 is back, counted at an independent subscriber, in every service's store and
in the S3 server.

The S3 server is a private SeaweedFS (motcua_dev.testing.private_seaweedfs), stopped and started again
on the same ports and data directory: the shared one is never touched. Retry delays are set
(MOTCUA_RETRY_DELAYS_MS) so that a message's budget outlasts the outage: nothing is parked, and
the test checks every .dlq queue is empty at the end (so the operator's dlq-replay is not needed).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from urllib.parse import unquote, urlsplit

import grpc
import pytest
from motcua_dev.harness import JOURNEY, Platform, journeys_complete, running_platform, sample_request, submit_all
from motcua_dev.testing import S3Endpoint, private_seaweedfs

from motcua.objects import ObjectStore
from motcua.store.sqlite import SqliteStore

pytestmark = pytest.mark.reliability

DISTRICTS = ("bim-son", "ba-thuoc")
OUTAGE_S = 15
# 56 s of delays, plus about 6 s per failed try (the S3 client's own retries): a message's budget
# outlasts the outage and SeaweedFS's restart, so nothing is parked.
RETRY_DELAYS_MS = "500,1000,2000,4000,8000,8000,8000,8000,8000,8000"
SIGNING_REQUESTED = "vn.motcua.dossier.signing_requested.v1"
SIGNED = "vn.motcua.document.signed.v1"
RECEIVED = "vn.motcua.dossier.received.v1"


class Submitter:
    """A stock grpcio client submitting one dossier after another until stopped, keeping each
    request with its outcome (the answer, or the status code) and whether S3 was known to be down
    for the whole call."""

    def __init__(self, address: str, s3_down: threading.Event, first: int):
        self.address, self.s3_down, self.n = address, s3_down, first
        self.accepted: list[tuple[object, str]] = []  # (request, code)
        self.failed: list[tuple[object, grpc.StatusCode, str, bool]] = []  # (request, code, details, S3 down all along)
        self._stop = threading.Event()

    def start(self) -> Submitter:
        self._thread = threading.Thread(target=self._run, name="submitter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        from motcua.intake.v1 import intake_pb2_grpc

        with grpc.insecure_channel(self.address) as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            while not self._stop.is_set():
                request = sample_request(DISTRICTS[self.n % 2], self.n, documents=1)
                self.n += 1
                down_before = self.s3_down.is_set()
                try:
                    answer = stub.SubmitDossier(request, timeout=60)
                except grpc.RpcError as error:
                    self.failed.append((request, error.code(), error.details() or "",
                                        down_before and self.s3_down.is_set()))
                else:
                    self.accepted.append((request, answer.code))
                self._stop.wait(0.5)


def test_s3_stopped_during_submissions_and_signing(tmp_path, amqp_uri: str):
    with private_seaweedfs() as s3:
        bucket = f"rel-s3-{uuid.uuid4().hex[:10]}"
        with running_platform(tmp_path, amqp_uri, s3.env(bucket),
                              extra_env={"MOTCUA_RETRY_DELAYS_MS": RETRY_DELAYS_MS}) as platform:
            _outage_while_working(platform, s3, bucket)


def _outage_while_working(platform: Platform, s3: S3Endpoint, bucket: str) -> None:
    weed = s3.server
    assert weed is not None
    first = submit_all(platform.intake_address,
                       [sample_request(DISTRICTS[n % 2], n, documents=1) for n in range(8)])
    codes = {answer.code for answer in first}
    assert len(codes) == 8

    # Stop S3 as soon as signing has been asked for one of them: the others are being approved
    # (routing stores the draft), signed (signing reads it and stores the result) or archived.
    assert platform.events.wait_until(
        lambda events: any(e.type == SIGNING_REQUESTED and e.subject in codes for e in events), timeout=120), \
        platform.progress(codes)
    s3_down = threading.Event()
    submitter = Submitter(platform.intake_address, s3_down, first=100).start()
    weed.stop()
    s3_down.set()
    signed_at_stop = {e.subject for e in platform.events.seen(SIGNED)} & codes
    assert len(signed_at_stop) < len(codes), "every dossier was signed before S3 stopped: nothing was tested"
    time.sleep(OUTAGE_S)
    s3_down.clear()
    weed.start()
    weed.wait_ready()
    time.sleep(2)  # a few submissions after the restart too
    submitter.stop()

    # While S3 was down: UNAVAILABLE, nothing else; and something was refused.
    assert {code for _, code, _, _ in submitter.failed} <= {grpc.StatusCode.UNAVAILABLE}, submitter.failed
    assert any(down for *_, down in submitter.failed), "no submission was made while S3 was down"
    assert all("object storage" in details for _, _, details, _ in submitter.failed), submitter.failed
    assert submitter.accepted, "no submission was accepted after S3 came back"
    assert not [e for e in platform.officials.errors if "INTERNAL" in e], platform.officials.errors

    codes |= {code for _, code in submitter.accepted}
    assert platform.events.wait_until(journeys_complete(codes), timeout=300), platform.progress(codes)
    time.sleep(3)  # let late duplicates, if any, arrive before counting
    _assert_exactly_once(platform, codes)
    _assert_nothing_of_refused(platform, s3, bucket, [request for request, *_ in submitter.failed],
                               [request for request, *_, down in submitter.failed if down])
    assert _parked(platform) == {}, "messages were parked: the retry budget did not outlast the outage"


def _assert_exactly_once(platform: Platform, codes: set[str]) -> None:
    from archive.adapters.records import LedgerRecord
    from intake.adapters.records import DossierRecord
    from routing.adapters.instances import InstanceRecord
    from signing.adapters.records import SigningRecord

    by_subject = platform.events.by_subject()
    for code in codes:
        assert platform.events.distinct_types(code) == JOURNEY, code
        ids = Counter(e.id for e in by_subject[code])
        assert [i for i, n in ids.items() if n > 1] == [], f"{code}: event ids seen more than once"
        assert platform.count("intake", DossierRecord, {"code": code}) == 1, code
        assert platform.count("routing", InstanceRecord, {"code": code}) == 1, code
        assert platform.count("signing", SigningRecord, {"code": code}) == 1, code
        assert platform.count("archive", LedgerRecord, {"code": code}) == 1, code
    # Nothing else was accepted: every dossier intake holds is one of them.
    assert platform.count("intake", DossierRecord) == len(codes)
    assert platform.count("archive", LedgerRecord) == len(codes)


def _assert_nothing_of_refused(platform: Platform, s3: S3Endpoint, bucket: str, refused: list, while_down: list):
    from archive.adapters.records import LedgerRecord
    from intake.adapters.records import DossierRecord
    from intake.domain.dossier import dossier_id_for

    received = {e.subject for e in platform.events.seen(RECEIVED)}
    for request in refused:
        assert platform.count("intake", DossierRecord, {"request_id": request.request_id}) == 0, request.request_id
    # Every event of a dossier is under its code; the refused have none, so every dossier
    # received is one intake holds (checked above to be the accepted ones).
    assert received == {doc["code"] for doc in _all(platform, "intake", DossierRecord)}

    objects = ObjectStore(endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, bucket=bucket)
    for request in while_down:  # sent and answered while S3 was down: not a byte of it stored
        prefix = f"intake/{dossier_id_for(request.request_id)}/"
        assert list(objects.client.list_objects(bucket, prefix=prefix, recursive=True)) == [], prefix
    # In the S3 server: one archival package per dossier in each write-once copy, the version
    # archive recorded, intact (a retry during the outage rebuilt the same bytes: no orphan).
    for entry in _all(platform, "archive", LedgerRecord):
        for copy in entry["copies"]:
            vault = ObjectStore(endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key,
                                bucket=copy["bucket"])
            stored = list(vault.client.list_objects(copy["bucket"], prefix=f"packages/{entry['area']}/{entry['code']}/",
                                                    recursive=True, include_version=True))
            assert [(o.object_name, o.version_id) for o in stored] == [(copy["key"], copy["version_id"])], entry["code"]
            assert vault.hash_version(copy["key"], copy["version_id"])[0] == entry["package_sha256"]


def _all(platform: Platform, service: str, schema: type) -> list[dict]:
    store = SqliteStore(platform.data_dir / f"{service}.sqlite3")
    try:
        return store.collection(schema).find({})
    finally:
        store.close()


def _parked(platform: Platform) -> dict[str, int]:
    """Messages waiting in any .dlq queue of the platform's vhost."""
    vhost = unquote(urlsplit(platform.env["MOTCUA_AMQP_URI"]).path.lstrip("/"))
    listing = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name",
                              "messages"], check=True, capture_output=True, text=True, timeout=60).stdout
    parked = {}
    for line in listing.splitlines():
        name, _, count = line.rpartition("\t")
        if name.endswith(".dlq") and count.strip().isdigit() and int(count) > 0:
            parked[name] = int(count)
    return parked
