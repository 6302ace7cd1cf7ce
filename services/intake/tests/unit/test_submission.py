"""The rules a submission must satisfy before anything is stored, and how dossiers are named.

Pure: no network, no store. Every bad input must raise motcua.errors.InvalidArgument whose
``field`` names the exact field a caller has to fix (DESIGN.md rule 5).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from intake.domain.catalog import Component, Procedure
from intake.domain.dossier import code_counter, dossier_code, dossier_id_for
from intake.domain.submission import (
    MAX_NAME_LENGTH,
    Applicant,
    IncomingDocument,
    Limits,
    check_applicant,
    check_documents,
    check_file_name,
    check_request_id,
    content_matches,
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
    Component("anh-hien-trang", "Ảnh hiện trạng", required=False, media_types=ANY_TYPE, max_bytes=4096),
))
PDF_ONLY = Procedure("1.001612", "Đăng ký thành lập hộ kinh doanh", "ho-kinh-doanh", components=(
    Component("don-de-nghi", "Giấy đề nghị đăng ký hộ kinh doanh"),
    Component("bien-ban-hop", "Biên bản họp thành viên hộ gia đình", required=False),
))
TWO_REQUIRED = Procedure("1.001193", "Đăng ký khai sinh", "ho-tich", components=(
    Component("to-khai", "Tờ khai đăng ký khai sinh"),
    Component("giay-chung-sinh", "Giấy chứng sinh"),
    Component("van-ban-uy-quyen", "Văn bản ủy quyền", required=False),
))


def pdf_of_size(size: int) -> bytes:
    """A PDF (magic at the start, %%EOF at the end) of exactly ``size`` bytes."""
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
    return head + b"%" * (size - len(head) - len(tail)) + tail


def doc(name: str = "don-de-nghi.pdf", media_type: str = "application/pdf", content: bytes = PDF,
        component: str = "don-de-nghi"):
    return IncomingDocument(name=name, media_type=media_type, content=content, component=component)


def assert_field(excinfo: pytest.ExceptionInfo, field: str) -> None:
    assert type(excinfo.value) is InvalidArgument
    assert excinfo.value.field == field
    assert str(excinfo.value).startswith(f"{field}: ")
    assert excinfo.value.reason


# -- request id -----------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [
    pytest.param("abcdefgh", id="8-chars"),
    pytest.param("a" * 128, id="128-chars"),
    pytest.param(str(uuid.uuid4()), id="uuid"),
    pytest.param("portal.HS:2026_11-0001", id="all-allowed-punctuation"),
])
def test_good_request_ids_pass(request_id):
    check_request_id(request_id)


@pytest.mark.parametrize("request_id", [
    pytest.param("", id="missing"),
    pytest.param("abcdefg", id="7-chars"),
    pytest.param("a" * 129, id="129-chars"),
    pytest.param("has space 1", id="space"),
    pytest.param("req/12345678", id="slash"),
    pytest.param("yêu-cầu-0001", id="non-ascii"),
    pytest.param("abcdefgh\n", id="trailing-newline"),
    pytest.param("\nabcdefgh", id="leading-newline"),
    pytest.param("abcd\x00efgh", id="nul"),
])
def test_bad_request_ids_name_request_id(request_id):
    with pytest.raises(InvalidArgument) as excinfo:
        check_request_id(request_id)
    assert_field(excinfo, "request_id")


# -- applicant ------------------------------------------------------------------------------------

GOOD_APPLICANT = Applicant(full_name="Nguyễn Văn An", identity_number="038095001234")


@pytest.mark.parametrize("applicant", [
    pytest.param(GOOD_APPLICANT, id="name-and-cccd"),
    pytest.param(Applicant("Lê Thị Bình", "001099012345", phone="0912345678", email="binh@example.vn",
                           address="Phường Ba Đình, Bỉm Sơn"), id="every-field"),
    pytest.param(Applicant("Trần C", "000000000000"), id="cccd-all-zeros-is-still-12-digits"),
    pytest.param(Applicant("An", "038095001234", phone="0912345678", notify_channels=["sms"]), id="told-by-sms"),
])
def test_good_applicants_pass(applicant):
    check_applicant(applicant)


@pytest.mark.parametrize("applicant, field", [
    pytest.param(None, "applicant", id="missing"),
    pytest.param(Applicant("", "038095001234"), "applicant.full_name", id="empty-name"),
    pytest.param(Applicant("   \t", "038095001234"), "applicant.full_name", id="blank-name"),
    pytest.param(Applicant("An", ""), "applicant.identity_number", id="cccd-missing"),
    pytest.param(Applicant("An", "03809500123"), "applicant.identity_number", id="cccd-11-digits"),
    pytest.param(Applicant("An", "0380950012345"), "applicant.identity_number", id="cccd-13-digits"),
    pytest.param(Applicant("An", "03809500123A"), "applicant.identity_number", id="cccd-letter"),
    pytest.param(Applicant("An", "038 095 001 234"), "applicant.identity_number", id="cccd-spaces"),
    pytest.param(Applicant("An", "038095001234\n"), "applicant.identity_number", id="cccd-trailing-newline"),
    pytest.param(Applicant("An", "٠٣٨٠٩٥٠٠١٢٣٤"), "applicant.identity_number", id="cccd-arabic-indic-digits"),
    pytest.param(Applicant("An", "０３８０９５００１２３４"), "applicant.identity_number", id="cccd-fullwidth-digits"),
    pytest.param(Applicant("An", "038095001234", email="an.example.vn"), "applicant.email", id="email-no-at"),
    pytest.param(Applicant("An", "038095001234", email="an@example"), "applicant.email", id="email-no-dot"),
    pytest.param(Applicant("An", "038095001234", email="a n@example.vn"), "applicant.email", id="email-space"),
    pytest.param(Applicant("An", "038095001234", email="an@example.vn\n"), "applicant.email",
                 id="email-trailing-newline"),
    pytest.param(Applicant("An", "038095001234", email="an@example.vn", notify_channels=["fax"]),
                 "applicant.notify_channels", id="unknown-channel"),
    pytest.param(Applicant("An", "038095001234", email="an@example.vn", notify_channels=["sms"]),
                 "applicant.notify_channels", id="sms-without-phone"),
])
def test_bad_applicants_name_the_field(applicant, field):
    with pytest.raises(InvalidArgument) as excinfo:
        check_applicant(applicant)
    assert_field(excinfo, field)


# -- file names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    pytest.param("don-de-nghi.pdf", id="plain"),
    pytest.param("Đơn đề nghị cấp phép xây dựng (bản sao).pdf", id="vietnamese-with-spaces"),
    pytest.param("a..b.pdf", id="dots-inside"),
    pytest.param("...", id="three-dots"),
    pytest.param("x" * MAX_NAME_LENGTH, id="at-length-limit"),
])
def test_good_file_names_pass(name):
    check_file_name(name, "documents[0].name")


@pytest.mark.parametrize("name, reason", [
    pytest.param("", "is required", id="empty"),
    pytest.param("   ", "is required", id="blank"),
    pytest.param("x" * (MAX_NAME_LENGTH + 1), "longer", id="too-long"),
    pytest.param("a/b.pdf", "path separators", id="slash"),
    pytest.param("../../etc/passwd", "path separators", id="traversal"),
    pytest.param("/abs.pdf", "path separators", id="absolute"),
    pytest.param("a\\b.pdf", "path separators", id="backslash"),
    pytest.param(".", "path separators", id="dot"),
    pytest.param("..", "path separators", id="dot-dot"),
    pytest.param("a\x00b.pdf", "control characters", id="nul"),
    pytest.param("a\nb.pdf", "control characters", id="newline"),
    pytest.param("a\rb.pdf", "control characters", id="carriage-return"),
    pytest.param("a\tb.pdf", "control characters", id="tab"),
    pytest.param("a\x07b.pdf", "control characters", id="bell"),
    pytest.param("a\x7fb.pdf", "control characters", id="delete"),
    pytest.param("a\x85b.pdf", "control characters", id="c1-next-line"),
    pytest.param("hoa-don\u202efdp.exe", "control characters", id="right-to-left-override"),
    pytest.param("a\u200bb.pdf", "control characters", id="zero-width-space"),
    pytest.param("a\u2028b.pdf", "control characters", id="line-separator"),
    pytest.param("a\u2029b.pdf", "control characters", id="paragraph-separator"),
])
def test_bad_file_names_name_the_given_field(name, reason):
    with pytest.raises(InvalidArgument) as excinfo:
        check_file_name(name, "documents[2].name")
    assert_field(excinfo, "documents[2].name")
    assert reason in excinfo.value.reason


# -- content --------------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type, content, expected", [
    pytest.param("application/pdf", PDF, True, id="pdf"),
    pytest.param("application/pdf", b"%PDF-1.4\n%%EOF", True, id="pdf-minimal"),
    pytest.param("application/pdf", PDF + b"\r\n  \n", True, id="pdf-whitespace-after-eof"),
    pytest.param("application/pdf", pdf_of_size(5000), True, id="pdf-large"),
    pytest.param("application/pdf", PDF + b"\0" * 1000, True, id="pdf-eof-within-last-kib"),
    pytest.param("application/pdf", PDF + b"\0" * 1024, False, id="pdf-eof-before-last-kib"),
    pytest.param("application/pdf", b"%PDF-1.7\n1 0 obj\n", False, id="pdf-truncated-no-eof"),
    pytest.param("application/pdf", b"hello %%EOF", False, id="pdf-no-magic"),
    pytest.param("application/pdf", b" %PDF-1.7\n%%EOF", False, id="pdf-magic-not-at-start"),
    pytest.param("application/pdf", PNG, False, id="png-claimed-pdf"),
    pytest.param("application/pdf", b"", False, id="pdf-empty"),
    pytest.param("image/png", PNG, True, id="png"),
    pytest.param("image/png", b"\x89PNG\r\n", False, id="png-short-magic"),
    pytest.param("image/png", JPEG, False, id="jpeg-claimed-png"),
    pytest.param("image/jpeg", JPEG, True, id="jpeg"),
    pytest.param("image/jpeg", b"\xff\xd8", False, id="jpeg-short-magic"),
    pytest.param("image/jpeg", PDF, False, id="pdf-claimed-jpeg"),
    pytest.param("text/plain", b"hello", False, id="unknown-media-type"),
    pytest.param("", PDF, False, id="no-media-type"),
    pytest.param("APPLICATION/PDF", PDF, False, id="media-type-case-matters"),
])
def test_content_matches(media_type, content, expected):
    assert content_matches(media_type, content) is expected


# -- documents ------------------------------------------------------------------------------------


@pytest.mark.parametrize("documents, procedure", [
    pytest.param([doc()], PDF_ONLY, id="one-pdf"),
    pytest.param([doc(), doc("anh.png", "image/png", PNG, "ban-ve"), doc("anh.jpg", "image/jpeg", JPEG, "ban-ve")],
                 BUILDING_PERMIT, id="pdf-png-jpeg-at-max-count"),
    pytest.param([doc("anh.png", "image/png", PNG)], BUILDING_PERMIT, id="required-component-as-an-image"),
    pytest.param([doc(), doc(content=pdf_of_size(512), component="ban-ve")], BUILDING_PERMIT,
                 id="exactly-at-the-component-size-limit"),
    pytest.param([doc(content=pdf_of_size(1024)), doc(content=pdf_of_size(1024)), doc(content=pdf_of_size(452))],
                 PDF_ONLY, id="exactly-at-the-dossier-size-limit"),
    pytest.param([doc("b.pdf", component="giay-chung-sinh"), doc("a.pdf", component="to-khai")], TWO_REQUIRED,
                 id="required-components-in-any-order"),
    pytest.param([doc(), doc("bien-ban.pdf", component="bien-ban-hop"), doc("bb-2.pdf", component="bien-ban-hop")],
                 PDF_ONLY, id="one-component-several-documents"),
    pytest.param([doc(content=pdf_of_size(LIMITS.max_document_bytes))], PDF_ONLY, id="exactly-at-size-limit"),
    pytest.param([doc(), doc()], PDF_ONLY, id="same-content-twice"),
])
def test_good_documents_pass(documents, procedure):
    check_documents(documents, procedure, LIMITS)


@pytest.mark.parametrize("documents, procedure, field, reason", [
    pytest.param([], PDF_ONLY, "documents", "at least one", id="none"),
    pytest.param([doc()] * (LIMITS.max_documents + 1), PDF_ONLY, "documents", "at most 3", id="too-many"),
    pytest.param([doc(), doc(name="")], PDF_ONLY, "documents[1].name", "required", id="second-name-empty"),
    pytest.param([doc(name="../x.pdf")], PDF_ONLY, "documents[0].name", "separators", id="name-with-slash"),
    pytest.param([doc(name="x\x01.pdf")], PDF_ONLY, "documents[0].name", "control", id="name-control-char"),
    pytest.param([doc("a.png", "image/png", PNG)], PDF_ONLY, "documents[0].media_type", "not accepted",
                 id="png-for-pdf-only-procedure"),
    pytest.param([doc(), doc("a.gif", "image/gif", b"GIF89a")], BUILDING_PERMIT, "documents[1].media_type",
                 "not accepted", id="gif-not-in-catalog"),
    pytest.param([doc(media_type="")], PDF_ONLY, "documents[0].media_type", "empty", id="media-type-missing"),
    pytest.param([doc(media_type="Application/PDF")], PDF_ONLY, "documents[0].media_type", "not accepted",
                 id="media-type-other-case"),
    pytest.param([doc(content=b"")], PDF_ONLY, "documents[0].content", "empty", id="empty-content"),
    pytest.param([doc(), doc(), doc(content=b"")], PDF_ONLY, "documents[2].content", "empty",
                 id="third-content-empty"),
    pytest.param([doc(content=pdf_of_size(LIMITS.max_document_bytes + 1))], PDF_ONLY, "documents[0].content",
                 "exceeds the limit of 1024", id="one-byte-over-size-limit"),
    pytest.param([doc(content=b"This is not a PDF, just text. %%EOF")], PDF_ONLY, "documents[0].content",
                 "is not a application/pdf file", id="text-claimed-pdf"),
    pytest.param([doc(), doc(content=PNG)], PDF_ONLY, "documents[1].content", "is not a application/pdf",
                 id="png-bytes-claimed-pdf"),
    pytest.param([doc(content=b"%PDF-1.7\n1 0 obj\n")], PDF_ONLY, "documents[0].content", "not a",
                 id="truncated-pdf"),
    pytest.param([doc("a.jpg", "image/jpeg", PNG)], BUILDING_PERMIT, "documents[0].content",
                 "is not a image/jpeg", id="png-bytes-claimed-jpeg"),
    pytest.param([doc("a.png", "image/png", PDF)], BUILDING_PERMIT, "documents[0].content",
                 "is not a image/png", id="pdf-bytes-claimed-png"),
    pytest.param([doc("a.txt", "text/plain", b"hello")],
                 Procedure("9.000009", "x", "y", components=(Component("don-de-nghi", "x",
                                                                       media_types=frozenset({"text/plain"})),)),
                 "documents[0].content", "not a", id="accepted-type-without-known-signature"),
    # components
    pytest.param([doc(component="")], PDF_ONLY, "documents[0].component",
                 "is required: the code of a component of procedure 1.001612 (don-de-nghi, bien-ban-hop)",
                 id="component-missing"),
    pytest.param([doc(), doc(), doc(component="ban-ve")], PDF_ONLY, "documents[2].component",
                 "'ban-ve' is not a component of procedure 1.001612 (don-de-nghi, bien-ban-hop)",
                 id="component-of-another-procedure"),
    pytest.param([doc(component="Don-De-Nghi")], PDF_ONLY, "documents[0].component", "is not a component",
                 id="component-other-case"),
    pytest.param([doc(), doc("dat.png", "image/png", PNG, "giay-to-dat")], BUILDING_PERMIT,
                 "documents[1].media_type", "image/png is not accepted for component 'giay-to-dat' (application/pdf)",
                 id="media-type-not-accepted-by-this-component"),
    pytest.param([doc(), doc(content=pdf_of_size(513), component="ban-ve")], BUILDING_PERMIT,
                 "documents[1].content", "513 bytes exceeds the limit of 512 for component 'ban-ve'",
                 id="over-the-component-size-limit"),
    pytest.param([doc(), doc(content=pdf_of_size(1025), component="anh-hien-trang")], BUILDING_PERMIT,
                 "documents[1].content", "1025 bytes exceeds the limit of 1024",
                 id="component-limit-above-the-platform-limit-is-not-used"),
    pytest.param([doc("ban-ve.pdf", component="ban-ve")], BUILDING_PERMIT, "documents",
                 "missing required component 'don-de-nghi' (Đơn đề nghị cấp giấy phép xây dựng)",
                 id="required-component-missing"),
    pytest.param([doc(component="to-khai")], TWO_REQUIRED, "documents",
                 "missing required component 'giay-chung-sinh' (Giấy chứng sinh)", id="second-required-missing"),
    pytest.param([doc(component="van-ban-uy-quyen")], TWO_REQUIRED, "documents",
                 "missing required components 'to-khai' (Tờ khai đăng ký khai sinh), "
                 "'giay-chung-sinh' (Giấy chứng sinh)", id="both-required-missing"),
    pytest.param([doc(component="ban-ve", content=b"")], BUILDING_PERMIT, "documents[0].content", "empty",
                 id="a-document-error-before-missing-components"),
    pytest.param([doc(content=pdf_of_size(1024)), doc(content=pdf_of_size(1024)), doc(content=pdf_of_size(453))],
                 PDF_ONLY, "documents", "2501 bytes in all exceeds the limit of 2500 per dossier",
                 id="one-byte-over-the-dossier-size-limit"),
])
def test_bad_documents_name_the_field(documents, procedure, field, reason):
    with pytest.raises(InvalidArgument) as excinfo:
        check_documents(documents, procedure, LIMITS)
    assert_field(excinfo, field)
    assert reason in excinfo.value.reason


# -- dossier code, counter, id -------------------------------------------------------------------

BIM_SON = "000.00.06.H56"


@pytest.mark.parametrize("received_at, sequence, expected", [
    pytest.param(datetime(2026, 11, 25, 18, 0, tzinfo=UTC), 1, "000.00.06.H56-261126-0001",
                 id="utc-evening-is-next-day-in-vietnam"),
    pytest.param(datetime(2026, 11, 25, 16, 59, 59, tzinfo=UTC), 1, "000.00.06.H56-261125-0001",
                 id="one-second-before-vietnam-midnight"),
    pytest.param(datetime(2026, 11, 25, 17, 0, tzinfo=UTC), 1, "000.00.06.H56-261126-0001",
                 id="vietnam-midnight"),
    pytest.param(datetime(2023, 10, 27, 9, 30, tzinfo=timezone(timedelta(hours=7))), 361,
                 "000.00.06.H56-231027-0361", id="domain-example"),
    pytest.param(datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=9))), 12,
                 "000.00.06.H56-251231-0012", id="tokyo-time-converted"),
    pytest.param(datetime(2026, 12, 31, 17, 0, tzinfo=UTC), 9999, "000.00.06.H56-270101-9999",
                 id="new-year-and-last-sequence"),
])
def test_dossier_code_uses_the_vietnam_date(received_at, sequence, expected):
    assert dossier_code(BIM_SON, received_at, sequence) == expected


@pytest.mark.parametrize("sequence", [0, -1, 10000])
def test_dossier_code_refuses_sequences_outside_four_digits(sequence):
    with pytest.raises(ValueError):
        dossier_code(BIM_SON, datetime(2026, 11, 25, tzinfo=UTC), sequence)


def test_code_counter_names_one_unit_and_one_vietnam_day():
    evening_utc = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert code_counter(BIM_SON, evening_utc) == "dossier-code:000.00.06.H56:261126"
    # The same Vietnam day, however it is written, is the same counter.
    same_day = [datetime(2026, 11, 25, 17, 0, tzinfo=UTC), datetime(2026, 11, 26, 16, 59, 59, tzinfo=UTC),
                datetime(2026, 11, 26, 8, 0, tzinfo=timezone(timedelta(hours=7)))]
    assert {code_counter(BIM_SON, t) for t in same_day} == {code_counter(BIM_SON, evening_utc)}
    # Another day or another unit is another counter.
    assert code_counter(BIM_SON, datetime(2026, 11, 25, 16, 59, 59, tzinfo=UTC)) == "dossier-code:000.00.06.H56:261125"
    assert code_counter("000.00.12.H56", evening_utc) == "dossier-code:000.00.12.H56:261126"


def test_dossier_id_is_stable_per_request_id():
    first = dossier_id_for("portal-req-0001")
    assert first == dossier_id_for("portal-req-0001")
    assert uuid.UUID(first).version == 5
    assert first != dossier_id_for("portal-req-0002")
    assert len({dossier_id_for(f"req-{n:08d}") for n in range(1000)}) == 1000
