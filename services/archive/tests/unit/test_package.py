"""What goes into an archival package and under which names."""

from datetime import UTC, datetime

from archive.domain.package import bag_info, package_files

DOCS = [{"key": "intake/d/aa", "sha256": "a" * 64, "size": 10, "media_type": "application/pdf"},
        {"key": "intake/d/bb", "sha256": "b" * 64, "size": 20, "media_type": "image/jpeg"}]
RESULT = {"key": "signing/c/cc", "sha256": "c" * 64, "size": 30, "media_type": "application/pdf"}


def test_files_are_named_by_checksum_never_by_what_the_applicant_typed():
    files = package_files([{**d, "name": "../../etc/passwd"} for d in DOCS], RESULT)
    assert [f.path for f in files] == [f"submitted/01-{'a' * 16}.pdf", f"submitted/02-{'b' * 16}.jpg",
                                       f"result/{'c' * 16}.pdf"]
    assert all(".." not in f.path for f in files)


def test_bag_info_carries_the_file_metadata():
    info = bag_info(code="000.00.06.H56-261125-0001", procedure_code="1.004616", receiving_unit="bim-son",
                    received_at=datetime(2026, 11, 20, tzinfo=UTC), returned_at=datetime(2026, 11, 25, tzinfo=UTC),
                    document_count=3, retention="permanent")
    assert info["External-Identifier"] == "000.00.06.H56-261125-0001"
    assert (info["Start-Date"], info["End-Date"]) == ("2026-11-20", "2026-11-25")
    assert info["Retention"] == "permanent" and info["Document-Count"] == "3"
