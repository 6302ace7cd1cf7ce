"""The cost-accounting counters of motcua.metrics, each counted where the work is done, against the
real backends: SQLite on disk, SeaweedFS over S3, RabbitMQ with publisher confirms, fpdf2."""

from __future__ import annotations

import threading

import pytest
from fpdf import FPDF
from mongoengine import Document, IntField, StringField
from prometheus_client import REGISTRY

from motcua.fonts import new_document, pdf_bytes
from motcua.messaging import topology
from motcua.messaging.envelope import build_work
from motcua.store import DuplicateKey, SqliteStore, VersionConflict


class CostedThing(Document):
    meta = {"collection": "costed_things", "indexes": ["status"]}
    id = StringField(primary_key=True)
    version = IntField()
    status = StringField()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def writes() -> float:
    return sample("motcua_store_writes_total", backend="sqlite", collection="costed_things")


def commits(synchronous: str = "FULL") -> float:
    return sample("motcua_store_commits_total", backend="sqlite", synchronous=synchronous)


def test_a_sqlite_write_counts_one_write_and_one_fsynced_commit(tmp_path):
    store = SqliteStore(tmp_path / "costed.sqlite3")
    try:
        things = store.collection(CostedThing)
        w0, c0 = writes(), commits()
        things.insert({"_id": "a", "status": "new"})
        assert (writes() - w0, commits() - c0) == (1, 1)
        things.update_fields("a", 1, {"status": "seen"})
        things.claim({"status": "seen"}, {"status": "taken"})  # a read-modify-write of its own
        assert (writes() - w0, commits() - c0) == (3, 3)
        with pytest.raises(DuplicateKey):
            things.insert({"_id": "a", "status": "new"})
        assert (writes() - w0, commits() - c0) == (3, 3)  # refused: nothing written
        with pytest.raises(VersionConflict):
            things.update_fields("a", 1, {"status": "late"})
        assert things.claim({"status": "nobody"}, {"status": "taken"}) is None
        things.get("a")
        things.find({"status": "taken"})
        assert (writes() - w0, commits() - c0) == (3, 3)  # conflicts, empty claims and reads write nothing
    finally:
        store.close()


def test_concurrent_sqlite_writes_count_each_write_and_share_commits(tmp_path):
    store = SqliteStore(tmp_path / "costed.sqlite3")
    try:
        things = store.collection(CostedThing)
        w0, c0 = writes(), commits()
        threads = [threading.Thread(target=lambda n=n: things.insert({"_id": f"t{n}", "status": "new"}))
                   for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert writes() - w0 == 16
        assert 1 <= commits() - c0 <= 16  # group commit: some share a transaction (and an fsync)
    finally:
        store.close()


def test_a_store_without_fsync_says_so_in_its_commits(tmp_path):
    store = SqliteStore(tmp_path / "costed.sqlite3", synchronous="OFF")
    try:
        things = store.collection(CostedThing)
        full, off = commits(), commits("OFF")
        things.insert({"_id": "a", "status": "new"})
        assert (commits() - full, commits("OFF") - off) == (0, 1)
    finally:
        store.close()


def test_s3_puts_and_gets_are_counted_by_method(object_store):
    def s3(method: str) -> float:
        return sample("motcua_s3_requests_total", method=method)

    put0, get0 = s3("PUT"), s3("GET")
    ref = object_store.put_bytes("costed/1", b"%PDF- one object", "application/pdf")
    assert (s3("PUT") - put0, s3("GET") - get0) == (1, 0)
    assert object_store.get(ref) == b"%PDF- one object"
    assert (s3("PUT") - put0, s3("GET") - get0) == (1, 1)


def test_a_publish_counts_one_publish_and_one_confirm_waited(publisher):
    exchange = topology.WORK_EXCHANGE.name

    def counts() -> tuple[float, float]:
        return (sample("motcua_publishes_total", exchange=exchange),
                sample("motcua_publish_confirms_total", exchange=exchange))

    before = counts()
    work = build_work(service="routing", area="bim-son", type="routing.route_dossier", body={"dossier_id": "c-1"})
    publisher.publish(work.to_outgoing())
    after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def test_a_rendered_pdf_is_counted_by_its_form():
    before = sample("motcua_pdfs_rendered_total", form="test-form")
    document = new_document(FPDF)
    document.add_page()
    document.set_font("DejaVu", size=12)
    document.cell(0, 10, "Giấy tiếp nhận")
    assert pdf_bytes(document, "test-form").startswith(b"%PDF-")
    assert sample("motcua_pdfs_rendered_total", form="test-form") - before == 1
