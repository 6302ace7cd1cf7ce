"""Archive's use cases on fake ports (in-memory store, objects and write-once vaults, a recording
publisher, a fixed clock): two verified copies, one ledger entry, the package's metadata and
event log, crash and retry, fixity."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from motcua_dev.testing import MemoryObjects, handle_as_a_worker, memory_units_of_work, sqlite_units_of_work

from archive.adapters.bags import build_package
from archive.adapters.records import DossierLifeRecord, LedgerRecord, LedgerStampRecord
from archive.application.archiving import ArchiveDossier, ArchivePolicy, Archivist, Lives, RecordLifeEvent
from archive.application.fixity import Fixity
from archive.application.ledger import Ledger
from archive.domain.package import PackageFile, SignatureCheck
from archive.entrypoints.messages import INBOUND, archive_dossier
from motcua.errors import Unavailable
from motcua.events.v1 import events_pb2
from motcua.messagebus import MessageBus
from motcua.messaging.consuming import Delivery, PermanentFailure
from motcua.messaging.envelope import build_event
from motcua.objects import IntegrityError, ObjectRef
from motcua.protobufs import document_ref, timestamp
from motcua.store import SqliteStore

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "premis-events.schema.json").read_text())
PDF = b"%PDF-1.7\n1 0 obj << /Type /Pages /Count 2 >>\n2 0 obj << /Type /Page >>\n3 0 obj << /Type /Page >>\n%%EOF"


class Crash(Exception):
    pass


@pytest.fixture
def world(memory_vaults):
    return make_world(*memory_units_of_work(), memory_vaults)


def make_world(uows, publisher, memory_vaults):
    objects = MemoryObjects()
    submitted = objects.put_bytes("intake/d1", PDF, "application/pdf").to_dict()
    receipt = objects.put_bytes("intake/d1/forms", b"%PDF-1.7 bien nhan /Type /Page", "application/pdf").to_dict()
    result = objects.put_bytes("signing/d1", b"%PDF-1.7 ket qua /Type /Page", "application/pdf").to_dict()
    slip = objects.put_bytes("routing/d1", b"%PDF-1.7 phieu kiem soat /Type /Page", "application/pdf").to_dict()
    command = ArchiveDossier(dossier_id="d1", code="000.01.06.H56-261201-0001", area="bim-son",
                             receiving_unit="phuong-ba-dinh", procedure_code="1.001193",
                             documents=({**submitted, "name": "to-khai.pdf"},), result={**result, "name": "kq.pdf"},
                             received_at=T0, returned_at=T0 + timedelta(days=3), event_id="ev-returned",
                             forms=({**slip, "name": "phieu-kiem-soat-05.pdf"},))
    lives = Lives(uows, DossierLifeRecord)
    lives.record(RecordLifeEvent("d1", command.code, "bim-son", "ev-1", "dossier.received", T0, ("phuong-ba-dinh",),
                                 "received by desk", retention="10", procedure_name="Đăng ký khai sinh",
                                 applicant="Nguyễn Văn A", receipt={**receipt, "name": "bien-nhan.pdf"}))
    lives.record(RecordLifeEvent("d1", command.code, "bim-son", "ev-2", "dossier.step_completed",
                                 T0 + timedelta(hours=2), ("can-bo-1",), "step review completed"))
    lives.record(RecordLifeEvent("d1", command.code, "bim-son", "ev-3", "document.signed",
                                 T0 + timedelta(days=1), ("Chủ tịch UBND", "UBND phường Ba Đình"), "signed"))
    archivist = Archivist(uows, objects, memory_vaults, build_package, LedgerRecord, DossierLifeRecord,
                          ArchivePolicy(), clock=lambda: T0 + timedelta(days=3, hours=1))
    return uows, publisher, objects, archivist, command, memory_vaults


def entries(uows):
    return uows.store.collection(LedgerRecord).find({}, sort=[("seq", 1)])


def test_a_returned_dossier_is_kept_in_two_verified_locked_copies_with_one_ledger_entry(world):
    uows, publisher, objects, archivist, command, vaults = world
    archivist(command)
    archivist(command)  # delivered again
    (entry,) = entries(uows)
    assert (entry["seq"], entry["code"], entry["retention"], entry["outbox"]) == (1, command.code, "10", [])
    assert entry["retain_until"] == "2036-12-04T02:00:00+00:00"  # the return + 10 years (the catalog's class)
    key = entry["copies"][0]["key"]
    assert key == f"packages/bim-son/{command.code}/{entry['package_sha256']}.tar"
    assert [c["name"] for c in entry["copies"]] == ["primary", "copy"]
    assert all(v.only(key) == vaults[0].only(key) for v in vaults) and vaults[0].writes == vaults[1].writes == 1
    assert publisher.types() == ["vn.motcua.dossier.archived.v1"]
    archived = events_pb2.DossierArchived.FromString(publisher.published[0].body)
    assert (archived.package_sha256, archived.ledger_seq, archived.ledger_hash, archived.retention) == (
        entry["package_sha256"], 1, entry["hash"], "10")
    assert [(c.name, c.version_id) for c in archived.copies] == [(c["name"], c["version_id"]) for c in entry["copies"]]
    assert publisher.published[0].routing_key == "bim-son.dossier.archived"

    with tarfile.open(fileobj=io.BytesIO(vaults[0].only(key))) as tar:
        names = tar.getnames()
        premis = json.loads(tar.extractfile(f"{command.code}/data/metadata/premis.json").read())
        decree30 = json.loads(tar.extractfile(f"{command.code}/data/metadata/decree30.json").read())
        info = tar.extractfile(f"{command.code}/bag-info.txt").read().decode()
    assert names == sorted(names, key=lambda n: names.index(n))  # (stable order checked by the bytes test)
    # the receipt (form 01) and routing's forms (here form 05, the control slip)
    assert len([n for n in names if n.startswith(f"{command.code}/data/forms/")]) == 2
    jsonschema.validate(premis, SCHEMA)
    kinds = [e["motcuaEventType"] for e in premis["events"]]
    # the receipt, the control slip and the result: no validator configured here, and the log says so
    assert kinds == ["dossier.received", "dossier.step_completed", "document.signed", "dossier.returned",
                     *["archive.signature_check"] * 3, "archive.package", "archive.digests"]
    assert {e["eventOutcomeInformation"][0]["eventOutcome"] for e in premis["events"][4:7]} == {"not validated"}
    result_meta = next(d for d in decree30["documents"] if d["role"] == "result")
    assert result_meta["signer"] == ["Chủ tịch UBND", "UBND phường Ba Đình"]
    submitted_meta = next(d for d in decree30["documents"] if d["role"] == "submitted")
    assert (submitted_meta["page_count"], submitted_meta["format"], submitted_meta["summary"]) == (
        2, "application/pdf", "to-khai.pdf")
    assert decree30["file"]["retention"] == "10" and decree30["file"]["title"].endswith("Đăng ký khai sinh")
    assert "Bagging-Date: 2026-12-04" in info


@pytest.mark.parametrize("stage", ["copied:primary", "copied:copy"])
def test_a_crash_between_the_copies_or_before_the_ledger_entry_leaves_no_orphan(world, stage):
    uows, publisher, objects, archivist, command, vaults = world

    def crash(at):
        if at == stage:
            raise Crash(at)
    archivist.checkpoint = crash
    with pytest.raises(Crash):
        archivist(command)
    assert entries(uows) == [] and publisher.published == []
    archivist.checkpoint = lambda at: None
    archivist(command)  # the message is delivered again: same bytes, same key, the stored version is reused
    (entry,) = entries(uows)
    for vault in vaults:
        assert vault.writes == 1 and len(vault.versions) == 1
        assert vault.digest(entry["copies"][0]["key"], next(
            c["version_id"] for c in entry["copies"] if c["name"] == vault.name)) == entry["package_sha256"]
    assert publisher.types() == ["vn.motcua.dossier.archived.v1"]


def test_a_copy_that_does_not_verify_is_never_announced(world):
    uows, publisher, objects, archivist, command, vaults = world
    vaults[1].corrupt_writes = True
    with pytest.raises(IntegrityError):  # retried by the queue's budget, then parked
        archivist(command)
    assert entries(uows) == [] and publisher.published == []


def test_an_unreachable_object_store_stores_and_announces_nothing(world):
    uows, publisher, objects, archivist, command, vaults = world
    objects.fail = True
    with pytest.raises(ConnectionError):
        archivist(command)
    assert entries(uows) == [] and publisher.published == [] and vaults[0].versions == {}


def test_ledger_entries_chain_and_tampering_is_named(world):
    uows, publisher, objects, archivist, command, vaults = world
    for n in range(1, 4):
        archivist(ArchiveDossier(**{**command.__dict__, "dossier_id": f"d{n}", "code": f"{command.code[:-1]}{n}"}))
    book = Ledger(uows, LedgerRecord, LedgerStampRecord)
    report = book.verify()
    assert report.ok and report.chain.entries == 3 and not report.timestamped
    assert any("not timestamped" in line for line in report.lines())
    ledger = uows.store.collection(LedgerRecord)
    second = ledger.get("000000000002")
    ledger.replace({**second, "package_sha256": "f" * 64}, second["version"])  # edited
    assert (book.verify().chain.broken_seq, "edited" in book.verify().chain.reason) == (2, True)
    ledger.replace({**ledger.get("000000000002"), "package_sha256": second["package_sha256"]},
                   ledger.get("000000000002")["version"])
    assert book.verify().ok
    ledger.delete("000000000002")  # removed
    assert book.verify().chain.broken_seq == 2


def test_reordered_ledger_entries_are_named():
    from archive.domain import ledger

    chain, previous = [], None
    for n in range(1, 5):
        previous = ledger.seal({"code": f"C{n}", "package_sha256": str(n) * 64}, previous)
        chain.append(previous)
    assert ledger.verify(chain).ok
    swapped = [chain[0], {**chain[2], "seq": 2}, {**chain[1], "seq": 3}, chain[3]]
    verdict = ledger.verify(swapped)
    assert (verdict.ok, verdict.broken_seq) == (False, 2)
    assert ledger.verify([chain[0], chain[2], chain[3]]).broken_seq == 2  # removed, seq gap


def test_fixity_sweep_detects_an_overwritten_copy_and_repairs_it_from_the_good_one(world):
    uows, publisher, objects, archivist, command, vaults = world
    archivist(command)
    (entry,) = entries(uows)
    key = entry["copies"][0]["key"]
    good = vaults[1].only(key)
    flipped = good[:100] + bytes([good[100] ^ 0x01]) + good[101:]
    bad_version = vaults[1].overwrite(key, flipped)  # the lock allows a new version over the key
    clock = [T0 + timedelta(days=40)]
    fixity = Fixity(uows, vaults, LedgerRecord, clock=lambda: clock[0], batch=5)
    publisher.published.clear()
    (result,) = fixity.sweep()
    assert result["state"] == "repaired"
    assert publisher.types() == ["vn.motcua.archive.fixity_failed.v1"]
    failed = events_pb2.ArchiveFixityFailed.FromString(publisher.published[0].body)
    assert (failed.copy, failed.reason, failed.bad_version_id, failed.repaired) == (
        "copy", "overwritten", bad_version, True)
    assert vaults[1].digest(key, vaults[1].latest(key)) == entry["package_sha256"]
    assert vaults[1]._data(key, bad_version) == flipped  # kept for the investigation
    assert fixity.sweep() == []  # not due again before the interval
    clock[0] += timedelta(days=31)
    (again,) = fixity.sweep()
    assert again["state"] == "ok" and len(publisher.published) == 1
    (entry,) = entries(uows)
    assert entry["repairs"][0]["bad_version_id"] == bad_version and Ledger(
        uows, LedgerRecord, LedgerStampRecord).verify().ok  # fixity fields are outside the chain


def test_fixity_claims_keep_replicas_apart(world):
    uows, publisher, objects, archivist, command, vaults = world
    for n in range(1, 4):
        archivist(ArchiveDossier(**{**command.__dict__, "dossier_id": f"d{n}", "code": f"{command.code[:-1]}{n}"}))
    later = T0 + timedelta(days=40)
    one = Fixity(uows, vaults, LedgerRecord, clock=lambda: later, batch=2)
    two = Fixity(uows, vaults, LedgerRecord, clock=lambda: later, batch=2)
    first, second = one.sweep(), two.sweep()
    assert (len(first), len(second)) == (2, 1)


def test_the_worker_turns_events_into_commands_and_parks_a_malformed_one(world):
    uows, publisher, objects, archivist, command, vaults = world
    event = build_event(name="dossier.returned", source="/t", subject=command.code, area="bim-son",
                        data=events_pb2.DossierReturned(
                            dossier_id="d1", code=command.code, receiving_unit="phuong-ba-dinh",
                            procedure_code="1.001193", documents=[document_ref(d) for d in command.documents],
                            result=document_ref(command.result), received_at=timestamp(T0),
                            returned_at=timestamp(command.returned_at)))
    built = archive_dossier(event)
    assert (built.dossier_id, built.code, built.area, built.receiving_unit, built.received_at, built.traceparent) == (
        "d1", command.code, "bim-son", "phuong-ba-dinh", T0, event.traceparent)
    lives = Lives(uows, DossierLifeRecord)
    dispatch = INBOUND.dispatch(MessageBus({ArchiveDossier: archivist, RecordLifeEvent: lives.record}))
    signed = build_event(name="document.signed", source="/t", subject=command.code, area="bim-son",
                         data=events_pb2.DocumentSigned(dossier_id="d1", code=command.code, signers=["X"],
                                                        signed_at=timestamp(T0)))
    for e in (signed, signed, event):
        out = e.to_outgoing()
        dispatch(Delivery(out.body, out.headers, out.content_type, "archive.bim-son"))
    life = uows.store.collection(DossierLifeRecord).get("d1")
    assert [e["type"] for e in life["events"]].count("document.signed") == 2  # ev-3 and this one, once
    assert life["frozen"] and publisher.types() == ["vn.motcua.dossier.archived.v1"]
    with pytest.raises(PermanentFailure):
        dispatch(Delivery(b"\x08\xff", out.headers, out.content_type, "archive.bim-son"))


def returned_event(command: ArchiveDossier, forms_to_follow=()):
    return build_event(name="dossier.returned", source="/t", subject=command.code, area="bim-son",
                       data=events_pb2.DossierReturned(
                           dossier_id="d1", code=command.code, receiving_unit="phuong-ba-dinh",
                           procedure_code="1.001193", documents=[document_ref(d) for d in command.documents],
                           result=document_ref(command.result), received_at=timestamp(T0),
                           returned_at=timestamp(command.returned_at), forms_to_follow=forms_to_follow))


def delivery_of(event) -> Delivery:
    out = event.to_outgoing()
    return Delivery(out.body, out.headers, out.content_type, "archive.bim-son")


def test_a_life_event_costs_one_commit_and_dossier_returned_s_record_rides_with_its_ledger_entry(
        tmp_path, memory_vaults):
    """On SQLite, as the worker runs them: a life event is one write (the life record keeps its
    id, so no processed record: was 2 commits); dossier.returned's record is stored with the
    ledger entry (freeze, entry, outbox: 3 commits, was 4). Redeliveries change nothing."""
    store = SqliteStore(tmp_path / "archive.sqlite3")
    try:
        uows, publisher, objects, archivist, command, vaults = make_world(*sqlite_units_of_work(store), memory_vaults)
        dispatch = INBOUND.dispatch(MessageBus({ArchiveDossier: archivist,
                                                RecordLifeEvent: Lives(uows, DossierLifeRecord).record}))
        assigned = delivery_of(build_event(name="dossier.assigned", source="/t", subject=command.code,
                                           area="bim-son", data=events_pb2.DossierAssigned(
                                               dossier_id="d1", code=command.code, step="review",
                                               assignee="can-bo-2", assigned_at=timestamp(T0))))
        assert handle_as_a_worker(uows, dispatch, assigned) == ("processed", 1, False)
        assert handle_as_a_worker(uows, dispatch, assigned) == ("processed", 0, False)  # found in the record
        returned = delivery_of(returned_event(command))
        assert handle_as_a_worker(uows, dispatch, returned) == ("processed", 3, True)
        assert handle_as_a_worker(uows, dispatch, returned) == ("duplicate", 0, True)
        assert handle_as_a_worker(uows, dispatch, assigned) == ("processed", 0, False)  # frozen: not packed
        life = uows.store.collection(DossierLifeRecord).get("d1")
        assert [e["type"] for e in life["events"]].count("dossier.assigned") == 1
        assert len(entries(uows)) == 1 and publisher.types() == ["vn.motcua.dossier.archived.v1"]
    finally:
        store.close()


@pytest.mark.parametrize("first", ["dossier.returned", "dossier.form_issued"])
def test_a_return_is_packed_once_the_form_05_it_waits_for_arrives_whichever_comes_first(world, first):
    # Routing's worker issues form 05 after the return: dossier.returned names it in forms_to_follow
    # and the package holds it whichever of the two events the archive meets first.
    uows, publisher, objects, archivist, command, vaults = world
    (slip,) = command.forms
    returned = build_event(name="dossier.returned", source="/t", subject=command.code, area="bim-son",
                           data=events_pb2.DossierReturned(
                               dossier_id="d1", code=command.code, receiving_unit="phuong-ba-dinh",
                               procedure_code="1.001193", documents=[document_ref(d) for d in command.documents],
                               result=document_ref(command.result), received_at=timestamp(T0),
                               returned_at=timestamp(command.returned_at), forms_to_follow=["05"]))
    issued = build_event(name="dossier.form_issued", source="/t", subject=command.code, area="bim-son",
                         data=events_pb2.FormIssued(dossier_id="d1", code=command.code, form="05",
                                                    document=document_ref(slip), receiving_unit="phuong-ba-dinh",
                                                    issued_at=timestamp(command.returned_at + timedelta(seconds=1))))
    dispatch = INBOUND.dispatch(MessageBus({ArchiveDossier: archivist,
                                            RecordLifeEvent: Lives(uows, DossierLifeRecord, archivist).record}))

    def deliver(event):
        out = event.to_outgoing()
        dispatch(Delivery(out.body, out.headers, out.content_type, "archive.bim-son"))

    deliver(returned if first == "dossier.returned" else issued)
    assert entries(uows) == [] and publisher.types() == []  # the other is still to come
    deliver(issued if first == "dossier.returned" else returned)
    deliver(issued)  # both delivered again
    deliver(returned)
    (entry,) = entries(uows)
    forms = [d for d in entry["documents"] if d["path"].startswith("data/forms/")]
    assert {f["sha256"] for f in forms} == {slip["sha256"], uows.store.collection(DossierLifeRecord).get("d1")[
        "receipt"]["sha256"]}
    assert publisher.types() == ["vn.motcua.dossier.archived.v1"]


@pytest.mark.parametrize("copy_fails", [False, True], ids=["first-time", "copy-failed-after-the-freeze"])
def test_a_return_waiting_for_its_form_keeps_its_record_and_the_form_s_rides_with_the_ledger_entry(
        tmp_path, memory_vaults, copy_fails):
    """On SQLite, as the worker runs them, form 05 coming after the return: the return's record
    rides with the write that makes it wait (1 commit, was 2); the form is recorded, the dossier
    frozen, packed and entered, the form's record with the entry (4 commits with the outbox's, was
    5). A copy that fails after the freeze is written again when the form is redelivered (entry
    and outbox: 2 commits)."""
    store = SqliteStore(tmp_path / "archive.sqlite3")
    try:
        uows, publisher, objects, archivist, command, vaults = make_world(*sqlite_units_of_work(store), memory_vaults)
        dispatch = INBOUND.dispatch(MessageBus({ArchiveDossier: archivist,
                                                RecordLifeEvent: Lives(uows, DossierLifeRecord, archivist).record}))
        (slip,) = command.forms
        returned = delivery_of(returned_event(command, forms_to_follow=["05"]))
        issued = delivery_of(build_event(name="dossier.form_issued", source="/t", subject=command.code,
                                         area="bim-son", data=events_pb2.FormIssued(
                                             dossier_id="d1", code=command.code, form="05",
                                             document=document_ref(slip), receiving_unit="phuong-ba-dinh",
                                             issued_at=timestamp(command.returned_at))))
        assert handle_as_a_worker(uows, dispatch, returned) == ("processed", 1, True)
        if copy_fails:
            vaults[1].corrupt_writes = True  # the second copy fails its check: after the freeze
            assert handle_as_a_worker(uows, dispatch, issued)[::2] == ("retried", False)
            assert uows.store.collection(DossierLifeRecord).get("d1")["frozen"] and entries(uows) == []
            vaults[1].corrupt_writes = False
        assert handle_as_a_worker(uows, dispatch, issued) == ("processed", 2 if copy_fails else 4, True)
        assert handle_as_a_worker(uows, dispatch, issued) == ("duplicate", 0, True)
        (entry,) = entries(uows)
        assert slip["sha256"] in {d["sha256"] for d in entry["documents"]}
        assert publisher.types() == ["vn.motcua.dossier.archived.v1"]
    finally:
        store.close()


def test_a_copy_gone_is_rewritten_from_the_other_and_both_gone_is_damage_reported(world):
    uows, publisher, objects, archivist, command, vaults = world
    archivist(command)
    (entry,) = entries(uows)
    key = entry["copies"][0]["key"]
    vaults[0].versions[key] = []  # the primary's version removed (GOVERNANCE bypassed by an insider)
    publisher.published.clear()
    fixity = Fixity(uows, vaults, LedgerRecord, clock=lambda: T0 + timedelta(days=40))
    (result,) = fixity.sweep()
    assert result["state"] == "repaired" and [f["state"] for f in result["copies"]] == ["missing", "ok"]
    assert vaults[0].digest(key, vaults[0].latest(key)) == entry["package_sha256"]
    for vault in vaults:
        vault.versions[key] = []
    publisher.published.clear()
    (result,) = Fixity(uows, vaults, LedgerRecord, clock=lambda: T0 + timedelta(days=80)).sweep()
    assert result["state"] == "damaged"  # nothing to repair from: said, not hidden
    failed = [events_pb2.ArchiveFixityFailed.FromString(m.body) for m in publisher.published]
    assert [(f.copy, f.reason, f.repaired) for f in failed] == [("primary", "missing", False),
                                                                ("copy", "missing", False)]


@pytest.mark.parametrize("backend", ["sqlite_store", "mongo_store"])
def test_the_ledger_on_both_store_backends(world, backend, request):
    from motcua_dev.testing import RecordingPublisher

    from motcua.messaging.outbox import Outbox
    from motcua.unit_of_work import UnitsOfWork

    _, _, objects, archivist, command, vaults = world
    publisher = RecordingPublisher()
    uows = UnitsOfWork(request.getfixturevalue(backend), Outbox(publisher))
    archivist.uows = uows
    for n in range(1, 4):
        archivist(ArchiveDossier(**{**command.__dict__, "dossier_id": f"d{n}", "code": f"{command.code[:-1]}{n}"}))
    archivist(ArchiveDossier(**{**command.__dict__, "dossier_id": "d2", "code": f"{command.code[:-1]}2"}))
    report = Ledger(uows, LedgerRecord, LedgerStampRecord).verify()
    assert report.ok and report.chain.entries == 3 and len(publisher.published) == 3
    fixity = Fixity(uows, vaults, LedgerRecord, clock=lambda: T0 + timedelta(days=40))
    assert [r["state"] for r in fixity.sweep()] == ["ok"] * 3
    assert Ledger(uows, LedgerRecord, LedgerStampRecord).verify().ok


def test_each_signed_pdf_of_the_package_is_validated_and_its_verdict_logged_and_none_while_the_validator_is_down(
        world):
    uows, publisher, objects, archivist, command, vaults = world
    seen: list[tuple[str, bytes]] = []
    down = [True]

    def check(file: PackageFile, chunks) -> SignatureCheck:
        if down[0]:
            raise Unavailable("signing api at 127.0.0.1:50053: UNAVAILABLE")
        seen.append((file.role, b"".join(chunks)))
        if file.role == "result":
            return SignatureCheck("valid", ("Chủ tịch UBND", "UBND phường Ba Đình"), "2 signatures, B-LT, valid")
        return SignatureCheck("invalid", ("UBND phường Ba Đình",), "changed after sealing")

    archivist.check_signatures = check
    with pytest.raises(Unavailable):
        archivist(command)
    assert not entries(uows) and not any(v.writes for v in vaults)  # nothing archived without the verdicts
    down[0] = False
    archivist(command)
    (entry,) = entries(uows)
    assert sorted(role for role, _ in seen) == ["form", "form", "result"]  # the applicant's PDF is not ours
    assert dict(seen)["result"] == objects.get(ObjectRef.from_dict(command.result))  # the very bytes, streamed
    with tarfile.open(fileobj=io.BytesIO(vaults[0].only(entry["copies"][0]["key"]))) as tar:
        premis = json.loads(tar.extractfile(f"{command.code}/data/metadata/premis.json").read())
    jsonschema.validate(premis, SCHEMA)
    checks = {e["eventDetailInformation"][0]["eventDetail"].split(":")[0]: e["eventOutcomeInformation"][0]
              for e in premis["events"] if e["motcuaEventType"] == "archive.signature_check"}
    result_path = next(f"data/{d['path'].removeprefix('data/')}" for d in entry["documents"] if d["role"] == "result")
    assert checks[result_path]["eventOutcome"] == "success"
    assert [c["eventOutcome"] for path, c in sorted(checks.items()) if path != result_path] == ["failure", "failure"]
    assert "changed after sealing" in str(checks)
