"""The persistence port's contract: every test taking `store` runs on SQLite, on MongoDB
(mongomock) and on the in-memory fake the service-layer tests use; the SQLite-only tests at the
end cover its indexes and several processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField

from motcua.settings import PlatformSettings
from motcua.store import (
    DuplicateKey,
    InvalidDocument,
    MongoStore,
    SqliteStore,
    VersionConflict,
    open_store,
)
from motcua.store.schema import schema_of


class ContractJob(Document):
    meta = {"collection": "jobs", "indexes": [("district", "status", "due_at"), "-priority"]}
    id = StringField(primary_key=True)
    version = IntField()
    status = StringField(required=True, choices=("pending", "taken", "done"))
    district = StringField()
    due_at = DateTimeField()
    priority = IntField(min_value=0)
    code = StringField(unique=True)
    owner = StringField()
    note = StringField()  # deliberately not indexed
    items = ListField(DictField())


T0 = datetime(2025, 1, 1, tzinfo=UTC)
ICT = timezone(timedelta(hours=7))  # Vietnam


def job(n: int, **fields) -> dict:
    doc = {"_id": f"j{n}", "status": "pending", "district": "bim-son", "due_at": T0 + timedelta(hours=n),
           "priority": 0, "code": f"C{n}"}
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


# j1..j7: district, status, due_at (hours after T0), priority; j7 has no district.
SEED = [
    job(1, due_at=T0 + timedelta(hours=1), priority=2),
    job(2, due_at=T0 + timedelta(hours=3), priority=0),
    job(3, status="done", due_at=T0 + timedelta(hours=2), priority=1),
    job(4, district="ba-thuoc", due_at=T0 + timedelta(hours=4), priority=2),
    job(5, district="ba-thuoc", status="taken", due_at=T0, priority=1),
    job(6, due_at=T0 + timedelta(hours=2), priority=2),
    job(7, district=None, due_at=T0 + timedelta(hours=5), priority=0),
]


@pytest.fixture
def jobs(store):
    return store.collection(ContractJob)


@pytest.fixture
def seeded(jobs):
    for doc in SEED:
        jobs.insert(doc)
    return jobs


def as_stored(doc: dict, version: int) -> dict:
    """What the store hands back: the schema's defaults filled in (``items``), and the version."""
    return {"items": [], **doc, "version": version}


def ids(docs):
    return [d["_id"] for d in docs]


# -- schema -----------------------------------------------------------------------------------


def test_schema_reads_collection_and_indexes_from_mongoengine():
    schema = schema_of(ContractJob)
    assert schema.name == "jobs"
    assert schema.datetime_fields == {"due_at"}
    declared = {(ix.fields, ix.unique) for ix in schema.indexes}
    assert declared == {
        ((("district", 1), ("status", 1), ("due_at", 1)), False),
        ((("priority", -1),), False),
        ((("code", 1),), True),  # from unique=True, through mongoengine's index_specs
    }


# -- insert, get, delete ----------------------------------------------------------------------


def test_insert_sets_version_1_and_get_returns_the_stored_document(jobs):
    stored = jobs.insert(job(1, version=7, items=[{"id": "e1"}]))
    assert stored["version"] == 1
    assert stored == as_stored(job(1, items=[{"id": "e1"}]), version=1)
    assert jobs.insert(job(2))["items"] == []  # mongoengine's to_mongo() form: defaults filled in
    assert jobs.get("j1") == stored
    assert jobs.get("nope") is None


def test_returned_documents_are_fresh_copies(jobs):
    inserted = jobs.insert(job(1, items=[{"id": "e1"}]))
    inserted["items"].append({"id": "x"})
    got = jobs.get("j1")
    got["status"] = "done"
    got["items"].clear()
    found = jobs.find({"_id": "j1"})[0]
    found["items"].append({"id": "y"})
    assert jobs.get("j1")["items"] == [{"id": "e1"}]
    assert jobs.get("j1")["status"] == "pending"


def test_delete(jobs):
    jobs.insert(job(1))
    assert jobs.delete("j1") is True
    assert jobs.get("j1") is None
    assert jobs.delete("j1") is False


def test_duplicate_id_is_rejected_and_the_first_document_kept(jobs):
    jobs.insert(job(1))
    with pytest.raises(DuplicateKey):
        jobs.insert(job(1, status="done", code="other"))
    assert jobs.get("j1")["status"] == "pending"
    assert jobs.count({}) == 1


def test_unique_index_violation_on_insert_and_on_replace(jobs):
    jobs.insert(job(1, code="SAME"))
    with pytest.raises(DuplicateKey):
        jobs.insert(job(2, code="SAME"))
    assert jobs.get("j2") is None
    second = jobs.insert(job(2, code="OTHER"))
    with pytest.raises(DuplicateKey):
        jobs.replace({**second, "code": "SAME"}, expected_version=1)
    assert jobs.get("j2") == second


def test_non_sparse_unique_index_allows_one_missing_value_like_mongodb(jobs):
    jobs.insert(job(1, code=None))
    with pytest.raises(DuplicateKey):
        jobs.insert(job(2, code=None))
    jobs.insert(job(3, code="C3"))  # present values still only need to differ from each other
    assert ids(jobs.find({"_id": {"$in": ["j1", "j2", "j3"]}}, sort=[("_id", 1)])) == ["j1", "j3"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"status": "pending"}, "_id"),  # no _id
        (job(1, status=None), "status"),  # required
        (job(1, status="lost"), "status"),  # not one of the choices
        (job(1, priority="high"), "priority"),  # not an int
        (job(1, priority=-1), "priority"),  # below min_value
        (job(1, due_at="not a date"), "due_at"),
        (job(1, items="not a list"), "items"),
        (job(1, colour="red"), "colour"),  # not in the schema
    ],
)
def test_invalid_document_is_rejected_naming_the_field(jobs, doc, field):
    with pytest.raises(InvalidDocument, match=field):
        jobs.insert(doc)
    assert jobs.count({}) == 0


# -- replace ----------------------------------------------------------------------------------


def test_replace_is_version_checked(jobs):
    first = jobs.insert(job(1))
    done = jobs.replace({**first, "status": "done"}, expected_version=1)
    assert done["version"] == 2
    assert jobs.get("j1") == done
    with pytest.raises(VersionConflict):  # a writer that still holds version 1
        jobs.replace({**first, "status": "taken", "owner": "late"}, expected_version=1)
    assert jobs.get("j1") == done
    with pytest.raises(VersionConflict):
        jobs.replace(job(9), expected_version=1)  # does not exist
    assert jobs.get("j9") is None


def test_replace_validates(jobs):
    first = jobs.insert(job(1))
    with pytest.raises(InvalidDocument, match="priority"):
        jobs.replace({**first, "priority": "high"}, expected_version=1)
    assert jobs.get("j1") == first


# -- find and count ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter", "sort", "limit", "expected"),
    [
        ({"district": "bim-son", "status": "pending"}, [("due_at", 1)], None, ["j1", "j6", "j2"]),
        ({"district": "bim-son", "status": "pending"}, [("due_at", -1)], 2, ["j2", "j6"]),
        ({"district": "bim-son"}, [("due_at", 1), ("priority", -1)], None, ["j1", "j6", "j3", "j2"]),
        ({"district": "bim-son", "due_at": {"$gte": T0 + timedelta(hours=2), "$lt": T0 + timedelta(hours=3)}},
         [("_id", 1)], None, ["j3", "j6"]),
        ({"district": "bim-son", "due_at": {"$gt": T0 + timedelta(hours=2)}}, [("_id", 1)], None, ["j2"]),
        ({"district": "bim-son", "due_at": {"$lte": T0 + timedelta(hours=2)}}, [("_id", 1)], None,
         ["j1", "j3", "j6"]),
        ({"district": {"$in": ["bim-son", "ba-thuoc"]}, "status": {"$in": ["taken", "done"]}}, [("_id", 1)],
         None, ["j3", "j5"]),
        ({"district": "bim-son", "status": {"$ne": "pending"}}, [], None, ["j3"]),
        ({"priority": {"$gte": 0}, "district": {"$ne": "bim-son"}}, [("_id", 1)], None, ["j4", "j5", "j7"]),
        ({"district": None}, [], None, ["j7"]),
        ({"priority": {"$gt": 1}}, [("_id", 1)], None, ["j1", "j4", "j6"]),
        ({"priority": {"$lt": 1}}, [("_id", -1)], None, ["j7", "j2"]),
        ({}, [("priority", -1), ("_id", 1)], 2, ["j1", "j4"]),
        ({}, [("priority", -1), ("due_at", 1)], None, ["j1", "j6", "j4", "j5", "j3", "j2", "j7"]),
        ({"_id": {"$in": ["j2", "j9", "j5"]}}, [("_id", 1)], None, ["j2", "j5"]),
        ({"_id": "j4"}, [], None, ["j4"]),
        ({"district": "nowhere"}, [], None, []),
        ({"district": "bim-son"}, [("_id", 1)], 0, []),
    ],
)
def test_find(seeded, filter, sort, limit, expected):
    assert ids(seeded.find(filter, sort=sort, limit=limit)) == expected


def test_count(seeded):
    assert seeded.count({}) == 7
    assert seeded.count({"district": "bim-son"}) == 4
    assert seeded.count({"district": "bim-son", "status": "pending"}) == 3
    assert seeded.count({"priority": {"$in": [1, 2]}}) == 5
    assert seeded.count({"district": "nowhere"}) == 0


@pytest.mark.parametrize(
    ("filter", "sort"),
    [
        ({"note": "x"}, []),  # not indexed
        ({"district": "bim-son"}, [("note", 1)]),  # sort on a non-indexed field
        ({"status": "pending"}, []),  # indexed, but no index starts with it: a scan
        ({"district": {"$regex": "^bim"}}, []),  # not one of the port's operators
        ({"district": {"$ne": "bim-son"}}, []),  # $ne alone cannot seek
        ({"district": "bim-son"}, [("due_at", 2)]),
    ],
)
def test_queries_outside_the_port_rules_are_refused(seeded, filter, sort):
    with pytest.raises(ValueError):
        seeded.find(filter, sort=sort)


# -- claim, pull, counters --------------------------------------------------------------------


def test_claim_takes_the_first_by_sort_and_sets_fields(seeded):
    pending = {"district": "bim-son", "status": "pending"}
    claimed = seeded.claim(pending, {"status": "taken", "owner": "w1"}, sort=[("due_at", 1)])
    assert claimed == as_stored({**job(1, priority=2), "status": "taken", "owner": "w1"}, version=2)
    assert seeded.get("j1") == claimed
    assert seeded.claim(pending, {"status": "taken"}, sort=[("due_at", 1)])["_id"] == "j6"
    assert seeded.claim(pending, {"status": "taken"}, sort=[("due_at", 1)])["_id"] == "j2"
    assert seeded.claim(pending, {"status": "taken"}, sort=[("due_at", 1)]) is None
    assert seeded.count({"district": "bim-son", "status": "taken"}) == 3


def test_claim_follows_a_descending_sort(seeded):
    claimed = seeded.claim({"priority": {"$lte": 1}}, {"owner": "w"}, sort=[("priority", -1), ("due_at", 1)])
    assert (claimed["_id"], claimed["owner"], claimed["version"]) == ("j5", "w", 2)


def test_claim_with_an_invalid_change_changes_nothing(seeded):
    with pytest.raises(InvalidDocument):
        seeded.claim({"_id": "j1"}, {"status": "lost"})
    with pytest.raises(InvalidDocument):
        seeded.claim({"_id": "j1"}, {"colour": "red"})
    assert seeded.get("j1") == as_stored(SEED[0], version=1)


def test_pull_removes_matching_items_and_bumps_version(jobs):
    jobs.insert(job(1, items=[{"id": "e1", "n": 1}, {"id": "e2"}, {"id": "e3"}, {"other": "e1"}]))
    jobs.pull("j1", "items", "id", ["e1", "e3", "e9"])
    after = jobs.get("j1")
    assert after["items"] == [{"id": "e2"}, {"other": "e1"}]
    assert after["version"] == 2
    jobs.pull("missing", "items", "id", ["e2"])  # no document: nothing to do
    assert jobs.get("missing") is None


def test_update_fields_sets_only_those_fields_and_is_version_checked(jobs):
    first = jobs.insert(job(1, items=[{"id": "e1"}], note="kept"))
    due = datetime(2025, 6, 1, 9, 30, 0, 123456, tzinfo=ICT)
    jobs.update_fields("j1", 1, {"status": "taken", "items": [], "due_at": due, "owner": None})
    after = jobs.get("j1")
    # Exactly what replace would have stored with the same changes.
    expected = {**first, "status": "taken", "items": [], "due_at": due.astimezone(UTC).replace(microsecond=123000),
                "owner": None, "version": 2}
    assert {k: v for k, v in after.items() if v is not None} == {k: v for k, v in expected.items() if v is not None}
    assert after["note"] == "kept" and after["code"] == "C1"
    # The changed indexed field is found through its index at its new value.
    assert ids(jobs.find({"district": "bim-son", "status": "taken"})) == ["j1"]
    assert ids(jobs.find({"district": "bim-son", "status": "pending"})) == []
    assert ids(jobs.find({"district": "bim-son", "status": "taken", "due_at": {"$gte": T0 + timedelta(days=150)}})) \
        == ["j1"]

    with pytest.raises(VersionConflict):  # a writer that still holds version 1
        jobs.update_fields("j1", 1, {"status": "done"})
    with pytest.raises(VersionConflict):
        jobs.update_fields("j9", 1, {"status": "done"})  # does not exist
    assert jobs.get("j1") == after and jobs.get("j9") is None


def test_update_fields_validates_and_keeps_unique_indexes(jobs):
    jobs.insert(job(1))
    jobs.insert(job(2))
    for change in ({"status": "lost"}, {"colour": "red"}, {"priority": -1}, {"version": 5}, {"_id": "j3"}):
        with pytest.raises(InvalidDocument):
            jobs.update_fields("j1", 1, change)
    with pytest.raises(DuplicateKey):
        jobs.update_fields("j1", 1, {"code": "C2"})
    assert jobs.get("j1") == as_stored(job(1), version=1)


def test_counters_start_at_1_and_increment(store):
    assert [store.next_value("dossier") for _ in range(3)] == [1, 2, 3]
    assert store.next_value("receipt") == 1
    assert store.next_value("dossier") == 4


# -- datetimes --------------------------------------------------------------------------------


def test_datetimes_round_trip_as_utc_aware_milliseconds(jobs):
    local = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=ICT)
    inserted = jobs.insert(job(1, due_at=local, items=[{"at": local}]))
    jobs.insert(job(2, due_at=datetime(2025, 3, 1, 4, 0)))  # naive: taken as UTC
    one, two = jobs.get("j1"), jobs.get("j2")
    assert inserted == one  # insert returns what a read returns
    expected = datetime(2025, 3, 1, 3, 0, 0, 123000, tzinfo=UTC)
    assert one["due_at"] == expected and one["due_at"].utcoffset() == timedelta(0)
    assert one["items"][0]["at"] == expected and one["items"][0]["at"].utcoffset() == timedelta(0)
    assert two["due_at"] == datetime(2025, 3, 1, 4, 0, tzinfo=UTC)
    assert two["due_at"].utcoffset() == timedelta(0)


def test_datetimes_sort_and_compare_by_instant_not_by_local_text(jobs):
    jobs.insert(job(1, due_at=datetime(2025, 3, 1, 11, 0, tzinfo=ICT)))  # 04:00Z
    jobs.insert(job(2, due_at=datetime(2025, 3, 1, 3, 30, tzinfo=UTC)))
    jobs.insert(job(3, due_at=datetime(2025, 2, 28, 23, 30, tzinfo=timezone(timedelta(hours=-5)))))  # 04:30Z
    ordered = jobs.find({"district": "bim-son"}, sort=[("due_at", 1)])
    assert ids(ordered) == ["j2", "j1", "j3"]
    since = datetime(2025, 3, 1, 10, 45, tzinfo=ICT)  # 03:45Z
    later = jobs.find({"district": "bim-son", "due_at": {"$gte": since}}, sort=[("due_at", 1)])
    assert ids(later) == ["j1", "j3"]


OFFSETS = st.none() | st.builds(timezone, st.timedeltas(-timedelta(hours=14), timedelta(hours=14)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.datetimes(
            min_value=datetime(1900, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=OFFSETS,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_datetime_order_matches_the_instants(jobs, moments):
    district = uuid.uuid4().hex  # the store lives across examples; each example has its own district
    for moment in moments:
        unique = uuid.uuid4().hex
        jobs.insert({"_id": unique, "code": unique, "status": "pending", "district": district,
                     "due_at": moment})

    def instant(d):  # what MongoDB keeps: UTC, milliseconds; naive means UTC
        d = d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)
        return d.replace(microsecond=d.microsecond // 1000 * 1000)

    expected = sorted(instant(m) for m in moments)
    got = [d["due_at"] for d in jobs.find({"district": district}, sort=[("due_at", 1)])]
    assert got == expected
    assert all(d.utcoffset() == timedelta(0) for d in got)
    pivot = expected[len(expected) // 2]
    assert jobs.count({"district": district, "due_at": {"$lt": pivot}}) == sum(e < pivot for e in expected)


# -- open_store -------------------------------------------------------------------------------


def test_open_store_defaults_to_sqlite_and_creates_its_directory(tmp_path):
    settings = PlatformSettings.load(data_dir=tmp_path / "deep" / "data", mongo_uri=None)
    store = open_store(settings)
    try:
        assert isinstance(store, SqliteStore)
        assert settings.sqlite_path.exists()
    finally:
        store.close()


def test_open_store_uses_mongodb_when_a_uri_is_set(tmp_path):
    store = open_store(PlatformSettings.load(data_dir=tmp_path, mongo_uri="mongodb://127.0.0.1:1/motcua"))
    try:
        assert isinstance(store, MongoStore)  # pymongo connects lazily: nothing is contacted here
    finally:
        store.close()
    assert not (tmp_path / "platform.sqlite3").exists()


# -- SQLite only: indexes ---------------------------------------------------------------------


def test_sqlite_queries_use_the_declared_indexes(sqlite_store):
    jobs = sqlite_store.collection(ContractJob)
    for n in range(200):
        jobs.insert(job(n, district=f"d{n % 5}", priority=n % 7, status=("pending", "done")[n % 2]))

    plan = jobs.query_plan({"district": "d1", "status": "pending"}, sort=[("due_at", 1)], limit=10)
    assert "USING INDEX ix_jobs__district__status__due_at" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # the index gives the order too

    plan = jobs.query_plan({"district": "d1", "due_at": {"$gte": T0}}, sort=[("due_at", 1)])
    assert "USING INDEX ix_jobs__district__status__due_at" in plan, plan

    plan = jobs.query_plan({}, sort=[("priority", -1)], limit=10)
    assert "USING INDEX ix_jobs__priority_desc" in plan and "TEMP B-TREE" not in plan, plan

    plan = jobs.query_plan({"code": "C7"})
    assert "USING INDEX ux_jobs__code" in plan, plan

    plan = jobs.query_plan({"_id": {"$in": ["j1", "j2"]}})
    assert "USING INDEX sqlite_autoindex_jobs_1" in plan or "USING PRIMARY KEY" in plan, plan


# -- SQLite only: several processes on one file -----------------------------------------------

# Each worker is a fresh `python -c` process that loads this file by its path: that works under any
# pytest import mode, and no child inherits (through fork) a parent's connections or threads.
_WORKER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("store_contract_worker", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(getattr(module, sys.argv[2])(sys.argv[3], sys.argv[4])), flush=True)
"""


def _ready_then_wait_for_go():
    """A barrier across processes: all workers start at the same instant (the one the "go" line
    names, a little ahead), so that they really contend: a worker told first must not get a head
    start while the others are still being told."""
    print("ready", flush=True)
    start_at = float(sys.stdin.readline().split()[1])
    time.sleep(max(0.0, start_at - time.time()))


def _claim_worker(path, worker):
    store = SqliteStore(path)
    jobs = store.collection(ContractJob)
    _ready_then_wait_for_go()
    mine = []
    pending = {"district": "mp", "status": "pending"}
    change = {"status": "taken", "owner": worker}
    while (doc := jobs.claim(pending, change, sort=[("due_at", 1)])) is not None:
        mine.append(doc["_id"])
    store.close()
    return mine


def _counter_worker(path, worker):
    store = SqliteStore(path)
    _ready_then_wait_for_go()
    values = [store.next_value("receipt") for _ in range(500)]
    store.close()
    return values


def _run_workers(target, path, n=4) -> dict[str, list]:
    procs = {
        f"w{i}": subprocess.Popen(
            [sys.executable, "-c", _WORKER, __file__, target.__name__, str(path), f"w{i}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for i in range(n)
    }
    try:
        for proc in procs.values():
            assert proc.stdout.readline() == "ready\n"
        start_at = time.time() + 0.5
        for proc in procs.values():
            proc.stdin.write(f"go {start_at}\n")
            proc.stdin.flush()
        results = {}
        for worker, proc in procs.items():
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            results[worker] = json.loads(out)
        return results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_sqlite_processes_never_claim_a_document_twice(sqlite_store):
    JOBS = 1000  # noqa: N806 - enough that no worker can finish them all before the others start
    jobs = sqlite_store.collection(ContractJob)
    for n in range(JOBS):
        jobs.insert(job(n, district="mp", due_at=T0 + timedelta(seconds=n)))

    claimed = _run_workers(_claim_worker, sqlite_store.path)

    every = [doc_id for mine in claimed.values() for doc_id in mine]
    assert len(every) == len(set(every)) == JOBS  # nobody claimed one twice, together all of them
    assert sum(1 for mine in claimed.values() if mine) >= 2, "no contention: the test proved nothing"
    for worker, mine in claimed.items():  # each document says who claimed it, as the claimer saw it
        assert {jobs.get(doc_id)["owner"] for doc_id in mine} <= {worker}
        assert all(jobs.get(doc_id)["version"] == 2 for doc_id in mine)
    assert jobs.count({"district": "mp", "status": "pending"}) == 0


def test_sqlite_processes_share_one_counter_without_duplicates_or_gaps(sqlite_store):
    values = _run_workers(_counter_worker, sqlite_store.path)
    every = sorted(v for mine in values.values() for v in mine)
    assert every == list(range(1, 2001))
    assert all(mine == sorted(mine) for mine in values.values())  # each process sees it increase
    assert sqlite_store.next_value("receipt") == 2001


def test_sqlite_threads_writing_at_once_each_get_their_own_outcome(sqlite_store):
    # grpcio's pool writing together: the writes share commits (group commit), yet each thread
    # gets its own result or error, and every acknowledged write is there.
    jobs = sqlite_store.collection(ContractJob)
    jobs.insert(job(0, code="TAKEN"))
    threads, rounds = 16, 40
    outcomes: dict[int, list] = {t: [] for t in range(threads)}
    barrier = threading.Barrier(threads)

    def writer(t: int) -> None:
        barrier.wait()
        for r in range(rounds):
            n = 1000 + t * rounds + r
            seq = sqlite_store.next_value("threads")
            try:  # every 5th insert collides on the unique code: its neighbours must still commit
                jobs.insert(job(n, code="TAKEN" if r % 5 == 4 else f"C{n}"))
            except DuplicateKey:
                outcomes[t].append((seq, n, "duplicate"))
                continue
            jobs.replace({**jobs.get(f"j{n}"), "status": "taken"}, expected_version=1)
            try:  # a stale version must fail for this writer only
                jobs.update_fields(f"j{n}", 1, {"owner": "late"})
            except VersionConflict:
                outcomes[t].append((seq, n, "stored"))

    pool = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    every = [o for mine in outcomes.values() for o in mine]
    assert len(every) == threads * rounds
    assert sorted(seq for seq, _, _ in every) == list(range(1, threads * rounds + 1))
    for _, n, what in every:
        got = jobs.get(f"j{n}")
        if what == "duplicate":
            assert got is None
        else:
            assert (got["status"], got["version"], got.get("owner")) == ("taken", 2, None)
    assert jobs.count({"district": "bim-son", "status": "taken"}) == sum(w == "stored" for _, _, w in every)


# -- writes together -------------------------------------------------------------------------


def test_writes_together_are_stored_in_order_and_a_failure_in_the_block_raises(store, jobs):
    """Both backends store the writes of a together() block (SQLite in one commit) and let its
    error through; what a failed block keeps differs (next tests)."""
    with store.together():
        written = jobs.insert(job(1))
        jobs.replace({**written, "note": "changed"}, 1)  # (reads in the block may not see its writes)
    assert jobs.get("j1")["note"] == "changed" and jobs.get("j1")["version"] == 2
    with pytest.raises(DuplicateKey), store.together():
        jobs.insert(job(2))
        jobs.insert(job(3, code="C1"))  # j1's unique code
    assert jobs.get("j3") is None


def test_sqlite_commits_a_together_block_once_or_not_at_all(sqlite_store):
    from prometheus_client import REGISTRY

    def commits() -> float:
        return REGISTRY.get_sample_value("motcua_store_commits_total",
                                         {"backend": "sqlite", "synchronous": "FULL"}) or 0.0

    jobs = sqlite_store.collection(ContractJob)
    before = commits()
    with sqlite_store.together():
        jobs.insert(job(1))
        jobs.insert(job(2))
    assert commits() - before == 1
    with pytest.raises(VersionConflict), sqlite_store.together():
        jobs.insert(job(3))
        jobs.replace({**job(1), "note": "stale"}, 7)
    assert jobs.get("j3") is None  # rolled back with the failed write
    assert commits() - before == 1
