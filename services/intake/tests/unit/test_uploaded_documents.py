"""Uploaded documents in the domain: the streaming content check, the upload header, upload ids, and
uploaded documents going through the same checks as inline ones. Pure: no network, no store."""

from __future__ import annotations

import pytest

from intake.domain.catalog import Component, Procedure
from intake.domain.dossier import dossier_id_for
from intake.domain.submission import (
    PDF_TRAILER_WINDOW,
    ContentCheck,
    IncomingDocument,
    Limits,
    ResolvedDocument,
    check_documents,
    check_upload_header,
    content_matches,
    upload_id_for,
)
from motcua.errors import InvalidArgument

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 16 + b"\xff\xd9"
LIMITS = Limits(max_document_bytes=1024, max_documents=3, max_dossier_bytes=2500)
ANY_TYPE = frozenset({"application/pdf", "image/jpeg", "image/png"})
BUILDING_PERMIT = Procedure("1.004616", "Cấp giấy phép xây dựng", "hoat-dong-xay-dung", components=(
    Component("don-de-nghi", "Đơn đề nghị cấp giấy phép xây dựng", media_types=ANY_TYPE),
    Component("giay-to-dat", "Bản sao giấy tờ về đất", required=False),  # PDF only
    Component("ban-ve", "Bản vẽ thiết kế", required=False, media_types=ANY_TYPE, max_bytes=512),
))
SHA = "ab" * 32


def pdf_of_size(size: int) -> bytes:
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
    return head + b"%" * (size - len(head) - len(tail)) + tail


def uploaded(component: str = "don-de-nghi", size: int = 1000, media_type: str = "application/pdf",
             name: str = "scan.pdf") -> ResolvedDocument:
    return ResolvedDocument(upload_id="u-1", name=name, component=component, media_type=media_type, size=size,
                            sha256=SHA, key=f"intake/uploads/u-1/{SHA}")


def inline(component: str = "don-de-nghi", content: bytes = PDF) -> IncomingDocument:
    return IncomingDocument(name="don.pdf", media_type="application/pdf", content=content, component=component)


# -- the streaming content check -----------------------------------------------------------------

CONTENTS = [
    ("application/pdf", PDF), ("application/pdf", PDF[:-7]), ("application/pdf", pdf_of_size(3000)),
    ("application/pdf", PDF + b"x" * (PDF_TRAILER_WINDOW - 5)), ("application/pdf", PDF + b"x" * PDF_TRAILER_WINDOW),
    ("application/pdf", PNG), ("application/pdf", b"%PD"), ("application/pdf", b""),
    ("image/png", PNG), ("image/png", PNG[:7]), ("image/png", JPEG), ("image/jpeg", JPEG),
    ("image/jpeg", b"\xff\xd8"), ("image/gif", b"GIF89a"),
]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 100, 1024, 10_000])
@pytest.mark.parametrize("media_type, content", CONTENTS)
def test_the_check_in_chunks_agrees_with_the_check_on_bytes(media_type, content, chunk_size):
    check = ContentCheck(media_type)
    for start in range(0, len(content), chunk_size):
        check.feed(content[start:start + chunk_size])
    assert check.matches() is content_matches(media_type, content)
    assert check.size == len(content)


def test_the_expected_answers_on_bytes():
    assert content_matches("application/pdf", PDF)
    assert PDF.endswith(b"%%EOF\n")
    room = PDF_TRAILER_WINDOW - len(b"%%EOF\n")  # bytes after the PDF that keep %%EOF in the window
    assert content_matches("application/pdf", PDF + b"x" * room)
    assert not content_matches("application/pdf", PDF + b"x" * (room + 1))
    assert not content_matches("image/png", PNG[:7])


@pytest.mark.parametrize("media_type, chunks, refused_at", [
    pytest.param("application/pdf", [b"%", b"P", b"N"], 2, id="pdf-refused-at-the-first-wrong-byte"),
    pytest.param("application/pdf", [PNG, PDF], 0, id="png-claimed-pdf"),
    pytest.param("image/png", [b"\x89PNG", b"\r\n\x1a\n", b"anything"], None, id="png-in-pieces"),
    pytest.param("image/gif", [b"GIF89a"], 0, id="unknown-type-never-possible"),
])
def test_the_check_says_no_as_soon_as_the_leading_bytes_rule_the_type_out(media_type, chunks, refused_at):
    check = ContentCheck(media_type)
    answers = [check.feed(chunk) for chunk in chunks]
    expected = [True] * len(chunks) if refused_at is None else [True] * refused_at + [False]
    assert answers[:len(expected)] == expected


def test_the_check_keeps_no_more_than_a_kilobyte_and_a_few_bytes():
    check = ContentCheck("application/pdf")
    for _ in range(64):
        check.feed(b"%PDF-" + bytes(64 * 1024))
    assert len(check._head) + len(check._tail) <= PDF_TRAILER_WINDOW + 8


# -- header and ids ------------------------------------------------------------------------------


def test_a_good_header_gives_the_expected_sha256_in_lower_case():
    assert check_upload_header("req-00000001", "application/pdf", SHA.upper()) == SHA
    assert check_upload_header("req-00000001", "image/png", "") == ""


@pytest.mark.parametrize("request_id, media_type, sha256, field", [
    ("", "application/pdf", "", "header.request_id"),
    ("short", "application/pdf", "", "header.request_id"),
    ("req-00000001", "", "", "header.media_type"),
    ("req-00000001", "image/gif", "", "header.media_type"),
    ("req-00000001", "Application/PDF", "", "header.media_type"),
    ("req-00000001", "application/pdf", "ab" * 31, "header.sha256"),
    ("req-00000001", "application/pdf", "zz" * 32, "header.sha256"),
])
def test_a_bad_header_names_its_field(request_id, media_type, sha256, field):
    with pytest.raises(InvalidArgument) as excinfo:
        check_upload_header(request_id, media_type, sha256)
    assert excinfo.value.field == field


def test_upload_ids_are_stable_per_request_id_and_not_dossier_ids():
    assert upload_id_for("req-00000001") == upload_id_for("req-00000001")
    assert upload_id_for("req-00000001") != upload_id_for("req-00000002")
    assert upload_id_for("req-00000001") != dossier_id_for("req-00000001")


# -- uploaded documents in a submission ----------------------------------------------------------


@pytest.mark.parametrize("documents, uploads", [
    pytest.param([], [uploaded()], id="uploaded-only"),
    pytest.param([inline(component="ban-ve")], [uploaded()], id="required-component-uploaded"),
    pytest.param([inline()], [uploaded("ban-ve", 512, "image/png", "ban-ve.png")], id="mixed"),
])
def test_good_uploaded_documents_pass(documents, uploads):
    check_documents(documents, BUILDING_PERMIT, LIMITS, uploaded=uploads)


@pytest.mark.parametrize("documents, uploads, field, reason", [
    pytest.param([], [], "documents", "at least one", id="none-at-all"),
    pytest.param([inline(), inline()], [uploaded(), uploaded()], "documents", "at most 3", id="too-many-together"),
    pytest.param([], [uploaded(name="../x.pdf")], "uploaded[0].name", "separators", id="name-with-slash"),
    pytest.param([inline()], [uploaded(component="")], "uploaded[0].component", "is required", id="no-component"),
    pytest.param([inline()], [uploaded(component="to-khai")], "uploaded[0].component", "is not a component",
                 id="component-of-another-procedure"),
    pytest.param([inline()], [uploaded("giay-to-dat", media_type="image/png")], "uploaded[0].upload_id",
                 "image/png is not accepted for component 'giay-to-dat'", id="media-type-not-accepted"),
    pytest.param([inline()], [uploaded("ban-ve", 513)], "uploaded[0].upload_id",
                 "513 bytes exceeds the limit of 512 for component 'ban-ve'", id="over-the-component-limit"),
    pytest.param([], [uploaded(size=1025)], "uploaded[0].upload_id", "1025 bytes exceeds the limit of 1024",
                 id="over-the-document-limit"),
    pytest.param([], [uploaded(size=0)], "uploaded[0].upload_id", "empty", id="empty"),
    pytest.param([inline(component="ban-ve")], [uploaded("ban-ve", 100)], "documents",
                 "missing required component 'don-de-nghi'", id="required-component-missing"),
    pytest.param([inline(content=pdf_of_size(1024))], [uploaded(size=1024), uploaded(size=453)], "documents",
                 "2501 bytes in all exceeds the limit of 2500", id="over-the-dossier-limit-together"),
    pytest.param([inline(content=PNG)], [uploaded(size=10**9)], "documents[0].content", "is not a application/pdf",
                 id="inline-documents-are-checked-first"),
])
def test_bad_uploaded_documents_name_the_field(documents, uploads, field, reason):
    with pytest.raises(InvalidArgument) as excinfo:
        check_documents(documents, BUILDING_PERMIT, LIMITS, uploaded=uploads)
    assert excinfo.value.field == field
    assert reason in excinfo.value.reason
