"""Signing real PDFs with keys in a SoftHSM2 token, certificates from the development PKI served
over HTTP (OCSP, CRL, RFC 3161 TSA), checked by two independent validators: pyHanko's and poppler's
``pdfsig`` (Debian poppler-utils; NSS underneath), and the stamps' text by ``pdftotext``.

What is asserted with pdfsig, and why: with its default NSS store pdfsig must find both
signatures valid ("Signature is Valid."), of type ETSI.CAdES.detached with SHA-256, and must say
"Certificate issuer isn't Trusted." — the dev root is in no system store, and that line also
proves pdfsig built the chain up to a root it could judge. With an NSS database that trusts the
dev root and knows the issuing CA (``motcua_dev.pki.nss_trust_store``, made with ``certutil``,
Debian libnss3-tools) it must say "Certificate is Trusted." for every signature of a result (B-LT
and B-LTA) and of a sealed form: the store must hold the intermediate because of a poppler 22.12
bug explained there.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from fpdf import FPDF
from motcua_dev.harness import pdfsig
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.adapters.keys import CaClient, Enrollment, Subject, TokenKeySource
from signing.adapters.pdf import (
    DEFAULT_FONT,
    apply_seal,
    apply_signatures,
    sign_pdf,
    stamp_font,
    validate_pdf,
    verify_pdf,
)
from signing.adapters.token import TokenKeys
from signing.application.sign_document import SignDocument
from signing.domain import AlreadySigned, NotAPdf, SealRequest, SignerRole, SigningRefused, SigningRequest

pytestmark = pytest.mark.integration

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DOSSIER = "000.00.06.H56-231027-0361"
OFFICIAL, SEAL = "sign-bim-son", "bim-son"
UNIT = "UBND thị xã Bỉm Sơn"


def draft_pdf(pages: int = 2) -> bytes:
    pdf = FPDF()
    pdf.add_font("DejaVu", fname=FONT)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("DejaVu", size=16)
        pdf.multi_cell(0, 10, "QUYẾT ĐỊNH\nCấp giấy phép xây dựng", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=11)
        pdf.multi_cell(0, 7, f"Trang {n}. Ủy ban nhân dân thị xã Bỉm Sơn, tỉnh Thanh Hóa cấp giấy phép "
                             f"xây dựng cho hồ sơ {DOSSIER}.")
    return bytes(pdf.output())


def request_for(data: bytes, personal: str = OFFICIAL, seal: str = SEAL) -> SigningRequest:
    return SigningRequest.from_dict({
        "request_id": "req-1",
        "dossier_code": DOSSIER,
        "area": "bim-son",
        "document": {"key": f"routing/{DOSSIER}/draft", "sha256": hashlib.sha256(data).hexdigest(),
                     "size": len(data), "media_type": "application/pdf"},
        "signers": [{"role": "personal", "signer_id": personal}, {"role": "seal", "signer_id": seal}],
    })


@pytest.fixture(scope="module")
def keys(softhsm_token, dev_pki):
    keys = TokenKeys(softhsm_token.module, softhsm_token.label, softhsm_token.pin_file)
    enrollment = Enrollment(keys, CaClient(dev_pki.base_url))
    enrollment.enroll(SignerRole.PERSONAL, OFFICIAL, Subject("Nguyễn Văn An", UNIT, "Phó Chủ tịch UBND thị xã",
                                                             "Thanh Hóa"))
    enrollment.enroll(SignerRole.SEAL, SEAL, Subject(UNIT, UNIT, "", "Thanh Hóa"))
    keys.enrollment = enrollment
    yield keys
    keys.close()


@pytest.fixture(scope="module")
def pki(keys, dev_pki):
    """The key source of the worker: token signers, the HTTP TSA, fetched revocation data."""
    source = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url)
    source.trust_roots = lambda: [dev_pki.root_pem_file.read_bytes()]
    source.root_cert_file = dev_pki.root_pem_file
    return source


@pytest.fixture(scope="module")
def draft():
    return draft_pdf()


@pytest.fixture(scope="module")
def signed(pki, draft):
    return apply_signatures(draft, request_for(draft), pki)


# -- pyHanko's validator -----------------------------------------------------------------------


def test_two_signatures_personal_first_then_the_seal(signed, pki):
    reports = verify_pdf(signed.data, pki.trust_roots())
    assert [r.field_name for r in reports] == ["Sig_Official", "Sig_Seal"]
    assert [r.signer_name for r in reports] == ["Nguyễn Văn An", "UBND thị xã Bỉm Sơn"]
    assert "Organization: UBND thị xã Bỉm Sơn" in reports[0].signer_subject
    for report in reports:
        assert report.intact and report.valid and report.trusted and not report.revoked, report
        assert report.ok
    assert reports[0].signing_time <= reports[1].signing_time


def test_the_seal_covers_its_revision_and_the_personal_signature_stays_valid(signed, pki):
    personal, seal = verify_pdf(signed.data, pki.trust_roots())
    # after the seal only the validation data (DSS) was added: PAdES long-term updates
    assert seal.coverage == "entire_revision" and seal.modifications == "lta_updates"
    # the personal signature covers its own revision; what came after is a signature form field
    assert not personal.covers_whole_file and personal.coverage == "entire_revision"
    assert personal.modifications == "form_filling"
    assert personal.ok


def test_the_personal_signature_alone_is_the_first_revision(signed, pki, draft):
    reader = PdfFileReader(BytesIO(signed.data))
    first = reader.embedded_signatures[0]
    start, length = (int(v) for v in list(first.byte_range)[2:])
    revision = signed.data[: start + length]  # up to the end of its signed range
    assert revision.startswith(draft)  # an incremental update: the draft's bytes are untouched
    (report,) = verify_pdf(revision, pki.trust_roots())
    assert report.field_name == "Sig_Official" and report.ok and report.covers_whole_file


def test_pades_b_lt_with_a_trusted_timestamp_and_embedded_revocation_data(signed, pki):
    assert signed.level == "B-LT"
    reports = verify_pdf(signed.data, pki.trust_roots())
    now = datetime.now(UTC)
    for report, applied in zip(reports, signed.signatures, strict=True):
        assert (report.level, report.revocation, report.verdict) == ("B-LT", "good", "valid"), report
        assert "Issuing CA" in report.signer_issuer
        assert report.timestamp is not None and report.timestamp_trusted
        assert abs(report.timestamp - now) < timedelta(minutes=10)
        assert applied.timestamped_at == report.timestamp
        assert applied.signed_at == report.signing_time
    reader = PdfFileReader(BytesIO(signed.data))
    for sig in reader.embedded_regular_signatures:
        assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        assert sig.md_algorithm == "sha256"


def test_applied_signatures_report_roles_and_names(signed):
    assert [(s.role, s.field_name, s.signer_name) for s in signed.signatures] == [
        (SignerRole.PERSONAL, "Sig_Official", "Nguyễn Văn An"),
        (SignerRole.SEAL, "Sig_Seal", "UBND thị xã Bỉm Sơn"),
    ]


def test_each_applied_signature_is_what_the_signed_file_records(signed, pki, keys, dev_pki, draft):
    """Reported from the CMS just embedded, not read back: the same as pyHanko reads from the file."""
    lta = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url, lta=True)
    for result in (signed, apply_signatures(draft, request_for(draft), lta),
                   apply_seal(draft, SealRequest(SEAL, "Mẫu 01"), pki)):
        reports = verify_pdf(result.data, pki.trust_roots())
        assert [(a.field_name, a.signer_name, a.signed_at, a.timestamped_at) for a in result.signatures] == \
            [(r.field_name, r.signer_name, r.signing_time, r.timestamp) for r in reports]
        assert all(a.signed_at is not None and a.timestamped_at is not None for a in result.signatures)


def test_sign_pdf_returns_the_bytes(pki, draft):
    data = sign_pdf(draft, request_for(draft), pki)
    assert [r.ok for r in verify_pdf(data, pki.trust_roots())] == [True, True]


def test_another_root_does_not_make_it_trusted(signed, tmp_path):
    from motcua_dev.pki import DevCa

    stranger = DevCa(tmp_path / "other-pki", "http://127.0.0.1:9").root_pem_file.read_bytes()
    reports = verify_pdf(signed.data, [stranger])
    assert [(r.intact, r.valid, r.trusted, r.ok) for r in reports] == [(True, True, False, False)] * 2


def test_a_changed_byte_breaks_both_signatures(signed, pki):
    data = bytearray(signed.data)
    # the binary comment on line 2 of the draft: covered by both signatures, irrelevant to parsing
    at = data.index(b"\n") + 2
    data[at] ^= 0x01
    reports = verify_pdf(bytes(data), pki.trust_roots())
    assert [r.intact for r in reports] == [False, False]
    assert not any(r.ok for r in reports)


def test_an_update_after_the_seal_is_seen(signed, pki):
    writer = IncrementalPdfFileWriter(BytesIO(signed.data))
    writer.root["/MotcuaTampered"] = generic.BooleanObject(True)
    writer.update_root()
    out = BytesIO()
    writer.write(out)
    personal, seal = verify_pdf(out.getvalue(), pki.trust_roots())
    assert seal.intact and not seal.covers_whole_file
    assert seal.modifications != "none"


# -- appearance --------------------------------------------------------------------------------


def _widgets(data: bytes) -> dict[str, generic.DictionaryObject]:
    reader = PdfFileReader(BytesIO(data))
    last_page = reader.root["/Pages"]["/Kids"][-1].get_object()
    widgets = {}
    for annot in last_page["/Annots"]:
        annot = annot.get_object()
        if annot.get("/FT") == "/Sig":
            widgets[annot["/T"]] = annot
    return widgets


def test_visible_stamps_on_the_last_page_with_the_seal_over_a_third_of_the_signature(signed):
    widgets = _widgets(signed.data)
    assert set(widgets) == {"Sig_Official", "Sig_Seal"}
    px0, py0, px1, py1 = (float(v) for v in widgets["Sig_Official"]["/Rect"])
    sx0, sy0, sx1, sy1 = (float(v) for v in widgets["Sig_Seal"]["/Rect"])
    width = px1 - px0
    overlap = min(px1, sx1) - max(px0, sx0)
    assert sx0 < px0  # the seal sits to the left, over the start of the signature
    assert overlap == pytest.approx(width / 3, abs=2)
    assert (sy0, sy1) == (py0, py1)


def test_stamp_colours_and_text_widths(signed):
    widgets = _widgets(signed.data)

    def stream_and_fonts(annot):
        texts, fonts, todo = [], [], [annot["/AP"]["/N"].get_object()]
        while todo:  # the appearance and the form XObjects it draws
            xobj = todo.pop()
            texts.append(xobj.data)
            resources = xobj.get("/Resources", generic.DictionaryObject()).get_object()
            fonts += [f.get_object() for f in resources.get("/Font", {}).values()]
            todo += [x.get_object() for x in resources.get("/XObject", {}).values()]
        return b" ".join(texts), fonts

    personal, personal_fonts = stream_and_fonts(widgets["Sig_Official"])
    seal, seal_fonts = stream_and_fonts(widgets["Sig_Seal"])
    assert b"0.05 0.2 0.7 RG" in personal and b"0.05 0.2 0.7 rg" in personal  # blue border, text
    assert b"0.8 0.05 0.05 RG" in seal and b"0.8 0.05 0.05 rg" in seal  # red border, text
    for font in personal_fonts + seal_fonts:
        widths = [w for entry in font["/DescendantFonts"][0].get_object()["/W"]
                  if isinstance(entry, list) for w in entry]
        # PDF glyph widths are in 1/1000 em; DejaVuSans's own units (2048/em) would exceed 1000
        assert widths and max(widths) <= 1000
    assert personal_fonts and seal_fonts


def _stamp_fonts(data: bytes) -> dict[str, tuple[bytes, list[int]]]:
    """Each stamp's embedded font program and the glyphs (CIDs = glyph ids) its /W lists."""
    fonts = {}
    for name, annot in _widgets(data).items():
        todo = [annot["/AP"]["/N"].get_object()]
        while todo:
            xobj = todo.pop()
            resources = xobj.get("/Resources", generic.DictionaryObject()).get_object()
            for font in resources.get("/Font", {}).values():
                cid_font = font.get_object()["/DescendantFonts"][0].get_object()
                widths = list(cid_font["/W"])
                cids = [first + n for first, entry in zip(widths[::2], widths[1::2], strict=True)
                        for n in range(len(entry))]
                fonts[name] = (cid_font["/FontDescriptor"]["/FontFile2"].get_object().data, cids)
            todo += [x.get_object() for x in resources.get("/XObject", {}).values()]
    return fonts


def test_a_later_stamp_of_the_same_signers_embeds_their_kept_subset_with_every_glyph_it_draws(pki, draft):
    from fontTools.ttLib import TTFont

    # other digits in the stamps' signing times: every stamp holds all ten, the glyph sets are the same
    first, later = (_stamp_fonts(apply_signatures(draft, request_for(draft), pki, now=now).data)
                    for now in (datetime(2026, 1, 1, 1, 0, tzinfo=UTC), datetime(2029, 8, 7, 9, 35, 48, tzinfo=UTC)))
    assert set(later) == {"Sig_Official", "Sig_Seal"}
    for name, (program, cids) in later.items():
        assert program == first[name][0]  # the subset kept from the first result's stamp
        font = TTFont(BytesIO(program))
        glyphs, order = font["glyf"], font.getGlyphOrder()
        drawn = [order[cid] for cid in cids if order[cid] != "space"]
        assert {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"} <= set(drawn)
        assert len(drawn) > 20 and all(glyphs[g].numberOfContours != 0 for g in drawn), name


# -- pdfsig (poppler) --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_file(signed, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signed") / "signed.pdf"
    path.write_bytes(signed.data)
    return path


def test_pdfsig_finds_two_valid_pades_signatures(signed_file):
    personal, seal = pdfsig(signed_file)
    for sig, field, cn in ((personal, "Sig_Official", "Nguyễn Văn An"), (seal, "Sig_Seal", "UBND thị xã Bỉm Sơn")):
        assert sig["Signature Field Name"] == field
        assert sig["Signer Certificate Common Name"] == cn
        assert sig["Signature Type"] == "ETSI.CAdES.detached"
        assert sig["Signing Hash Algorithm"] == "SHA-256"
        assert sig["Signature Validation"] == "Signature is Valid."
        # the dev root is in no system NSS store: the chain ends at a root pdfsig does not trust
        assert sig["Certificate Validation"] == "Certificate issuer isn't Trusted."
    assert "Not total document signed" in personal


@pytest.fixture(scope="module")
def nss_db(dev_pki, tmp_path_factory) -> str:
    """A relying party's NSS store: the dev root trusted, the issuing CA known."""
    from motcua_dev.pki import dev_nss_trust_store

    return dev_nss_trust_store(dev_pki.ca.directory, tmp_path_factory.mktemp("nss"))


def _lta_result(keys, dev_pki, draft) -> bytes:
    lta = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url, lta=True)
    return apply_signatures(draft, request_for(draft), lta).data


def _sealed_form(pki, draft) -> bytes:
    return apply_seal(draft, SealRequest(SEAL, "Mẫu 01"), pki).data


@pytest.mark.parametrize(("document", "fields"), [
    ("result", ["Sig_Official", "Sig_Seal"]),
    ("result_lta", ["Sig_Official", "Sig_Seal"]),
    ("sealed_form", ["Sig_Seal"]),
])
def test_pdfsig_trusts_every_signature_when_nss_trusts_the_dev_root(document, fields, signed, keys, pki, dev_pki,
                                                                   draft, nss_db, tmp_path):
    data = {"result": lambda: signed.data, "result_lta": lambda: _lta_result(keys, dev_pki, draft),
            "sealed_form": lambda: _sealed_form(pki, draft)}[document]()
    path = tmp_path / f"{document}.pdf"
    path.write_bytes(data)
    # pdfsig checks each signer's certificate online (OCSP at the dev PKI) through the issuing CA
    found = pdfsig(path, "-nssdir", nss_db)
    # B-LTA's document timestamp (pyHanko's field Timestamp-<uuid>) is beyond pdfsig 22.12: it lists
    # it as "Signature Type: unknown", never verified; pyHanko's validator checks it above
    signatures = [s for s in found if not s["Signature Field Name"].startswith("Timestamp-")]
    assert len(found) - len(signatures) == (document == "result_lta")
    assert [s["Signature Field Name"] for s in signatures] == fields
    for sig in signatures:
        assert (sig["Signature Validation"], sig["Certificate Validation"]) == (
            "Signature is Valid.", "Certificate is Trusted."), sig


def test_pdfsig_sees_a_revoked_signer_certificate(keys, dev_pki, draft, nss_db, tmp_path):
    """The trusted store is not a rubber stamp: pdfsig, asking OCSP now, sees a revocation."""
    keys.enrollment.enroll(SignerRole.SEAL, "pdfsig-revoked", Subject("UBND xã Thử", "UBND xã Thử", "", "Thanh Hóa"))
    source = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url)
    path = tmp_path / "sealed.pdf"
    path.write_bytes(apply_seal(draft, SealRequest("pdfsig-revoked"), source).data)
    keys.enrollment.revoke(SignerRole.SEAL, "pdfsig-revoked", "key_compromise")
    (sig,) = pdfsig(path, "-nssdir", nss_db)
    assert sig["Signature Validation"] == "Signature is Valid."
    assert sig["Certificate Validation"] == "Certificate has been Revoked."


def test_pdfsig_sees_a_changed_byte(signed, tmp_path):
    data = bytearray(signed.data)
    data[data.index(b"\n") + 2] ^= 0x01
    path = tmp_path / "tampered.pdf"
    path.write_bytes(bytes(data))
    assert [s["Signature Validation"] for s in pdfsig(path, "-nocert")] == ["Digest Mismatch."] * 2


# -- bad input ---------------------------------------------------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")


@pytest.mark.parametrize(
    "make",
    [
        lambda d: b"hello",
        lambda d: PNG,
        lambda d: d[: len(d) * 2 // 3],  # truncated
        lambda d: d[:9] + b"garbage " * 300 + b"\n%%EOF\n",  # header and end marker, nothing parseable
        lambda d: d.replace(b"/Root", b"/Rxxx"),  # no document catalog
    ],
    ids=["hello", "png", "truncated", "garbage-between-markers", "no-catalog"],
)
def test_non_pdf_input_raises_the_domain_error(make, pki, draft):
    data = make(draft)
    with pytest.raises(NotAPdf):
        apply_signatures(data, request_for(data), pki)
    with pytest.raises(NotAPdf):
        verify_pdf(data, pki.trust_roots())


def test_signers_without_an_enrolled_key_are_refused_before_signing(pki, draft):
    with pytest.raises(SigningRefused, match="official 'nobody' has no enrolled personal signing key"):
        apply_signatures(draft, request_for(draft, personal="nobody"), pki)
    # the seal's key cannot stand in for the official, nor the official's for the seal
    with pytest.raises(SigningRefused, match="personal signing key"):
        apply_signatures(draft, request_for(draft, personal=SEAL), pki)
    with pytest.raises(SigningRefused, match="seal signing key"):
        apply_signatures(draft, request_for(draft, seal=OFFICIAL), pki)


def test_a_signed_document_is_not_signed_again(signed, pki):
    with pytest.raises(AlreadySigned, match="Sig_Official, Sig_Seal"):
        apply_signatures(signed.data, request_for(signed.data), pki)


# -- the use case with the real signer ----------------------------------------------------------


def test_sign_document_end_to_end(pki, draft):
    store: dict[str, bytes] = {}

    def write(prefix, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        store[f"{prefix}/{digest}"] = data
        return {"key": f"{prefix}/{digest}", "sha256": digest, "size": len(data), "media_type": media_type}

    def read(ref):
        data = store[ref["key"]]
        assert hashlib.sha256(data).hexdigest() == ref["sha256"]
        return data

    source = write(f"routing/{DOSSIER}", draft, "application/pdf")
    request = SigningRequest.from_dict({**request_for(draft).to_dict(), "document": source})
    result = SignDocument(read, write, lambda pdf, req: apply_signatures(pdf, req, pki))(request)

    stored = read(result.document)
    assert result.signer_names == ("Nguyễn Văn An", "UBND thị xã Bỉm Sơn")
    assert result.size == len(stored) and result.sha256 == hashlib.sha256(stored).hexdigest()
    assert result.signed_at == result.signatures[-1].timestamped_at
    assert [r.ok for r in verify_pdf(stored, pki.trust_roots())] == [True, True]


# -- stamps, revocation, expiry, keys in the token ---------------------------------------------


def test_the_stamps_say_who_signed_in_vietnamese(signed, tmp_path):
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed.data)
    text = subprocess.run(["pdftotext", "-f", "2", "-l", "2", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    for line in ("Người ký: Nguyễn Văn An", "Chức vụ: Phó Chủ tịch UBND thị xã", f"Đơn vị: {UNIT}",
                 "Cơ quan ban hành:", UNIT):
        assert line in text, text
    times = re.findall(r"Thời gian ký: (\d\d/\d\d/\d{4} \d\d:\d\d:\d\d) \(GMT\+7\)", text)
    assert len(times) == 2
    local = datetime.strptime(times[0], "%d/%m/%Y %H:%M:%S").replace(tzinfo=UTC) - timedelta(hours=7)
    assert abs(local - signed.signatures[0].signed_at) < timedelta(minutes=2)  # Vietnam's local time


def _enroll(keys, official: str, name: str):
    return keys.enrollment.enroll(SignerRole.PERSONAL, official, Subject(name, UNIT, "Chuyên viên", "Thanh Hóa"))


def test_a_certificate_revoked_after_signing_stays_valid_thanks_to_the_embedded_data(keys, pki, draft, dev_pki):
    _enroll(keys, "sign-later-revoked", "Trần Văn Bảy")
    signed = apply_signatures(draft, request_for(draft, personal="sign-later-revoked"), pki)
    keys.enrollment.revoke(SignerRole.PERSONAL, "sign-later-revoked", "key_compromise")
    # checked at the time of the timestamp token with the OCSP response embedded then
    reports = validate_pdf(signed.data, [dev_pki.root_pem_file.read_bytes()])
    assert [(r.verdict, r.revocation) for r in reports] == [("valid", "good")] * 2
    # and signing with it now is refused, naming the certificate and why
    with pytest.raises(SigningRefused, match=r"CN=Trần Văn Bảy.*serial [0-9a-f]+\) is revoked.*compromised key"):
        apply_signatures(draft, request_for(draft, personal="sign-later-revoked"), pki)


def test_an_expired_certificate_is_refused_naming_it(keys, dev_pki, draft):
    later = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url,
                           clock=lambda: datetime.now(UTC) + timedelta(days=3 * 365))
    with pytest.raises(SigningRefused, match=r"the certificate CN=Nguyễn Văn An.*\(serial [0-9a-f]+\) .* expired on"):
        apply_signatures(draft, request_for(draft), later)


def test_keys_are_generated_in_the_token_and_cannot_be_extracted(keys):
    for label in (f"official:{OFFICIAL}", f"seal:{SEAL}"):
        assert keys.is_extractable(label) is False
    listed = {e.label: e for e in keys.enrollment.listing()}
    assert listed[f"official:{OFFICIAL}"].title == "Phó Chủ tịch UBND thị xã"
    assert listed[f"seal:{SEAL}"].not_after > datetime.now(UTC) + timedelta(days=365)


def test_b_lta_by_setting_adds_a_document_timestamp(keys, dev_pki, draft):
    lta = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url, lta=True)
    signed = apply_signatures(draft, request_for(draft), lta)
    assert signed.level == "B-LTA"
    reports = validate_pdf(signed.data, [dev_pki.root_pem_file.read_bytes()])
    assert [r.level for r in reports] == ["B-LTA", "B-LTA"] and all(r.verdict == "valid" for r in reports)


# -- the API's use case with the real validator ---------------------------------------------------


def encrypted_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_encryption(owner_password="chu-so-huu", user_password="")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "encrypted")
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def queries(dev_pki, signed):
    from signing.application.validation import SigningQueries

    records = [{"_id": "d1:sign:1", "code": DOSSIER, "outcome": "signed", "signed_at": datetime.now(UTC),
                "signed": {"key": "signing/x", "sha256": hashlib.sha256(signed.data).hexdigest()}},
               {"_id": "d1:sign:0", "code": DOSSIER, "outcome": "refused", "signed_at": datetime.now(UTC)}]
    return SigningQueries(validate=lambda data: validate_pdf(data, [dev_pki.root_pem_file.read_bytes()]),
                          find=lambda f: [r for r in records if r["code"] == f["code"]],
                          read=lambda ref: signed.data, max_bytes=200_000)


@pytest.mark.parametrize("make, words", [
    (lambda d: b"", "no document"),
    (lambda d: b"%PDF-1.7\n" + b"x" * 200_000 + b"\n%%EOF\n", "larger than"),
    (lambda d: b"GIF89a", "not a signable PDF"),
    (lambda d: d, "carries no signature"),
    (lambda d: encrypted_pdf(), "encrypted"),
], ids=["empty", "oversize", "not-a-pdf", "unsigned", "encrypted"])
def test_the_api_refuses_bad_documents_as_invalid_argument(queries, draft, make, words):
    from motcua.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=words):
        queries.validate_bytes(make(draft))


def test_the_api_reports_a_signed_document_and_the_dossier_s_results(queries, signed):
    from motcua.errors import InvalidArgument, NotFound

    report = queries.validate_bytes(signed.data)
    assert report.verdict == "valid" and [s.level for s in report.signatures] == ["B-LT", "B-LT"]
    assert queries.validate_stored(DOSSIER).verdict == "valid"
    assert [r["_id"] for r in queries.signed_results(DOSSIER)] == ["d1:sign:1"]  # the refused one is no result
    with pytest.raises(NotFound):
        queries.validate_stored(DOSSIER, sha256="0" * 64)
    with pytest.raises(NotFound):
        queries.signed_results("000.00.12.H56-261207-0009")
    with pytest.raises(InvalidArgument):
        queries.signed_results("../etc/passwd")
    tampered = bytearray(signed.data)
    tampered[tampered.index(b"\n") + 2] ^= 0x01
    assert queries.validate_bytes(bytes(tampered)).verdict == "invalid"


# -- what operators see ------------------------------------------------------------------------


def test_signing_and_sealing_are_timed_by_level_and_outcome(keys, softhsm_token, dev_pki, draft):
    """motcua_signing_duration_seconds, recorded where the worker's results and the api's forms
    are signed: the signer pool (its child processes open their own token sessions; the in-process
    signer records through the same function)."""
    from prometheus_client import REGISTRY

    from signing.adapters.signer_pool import EngineConfig, SignerPool
    from signing.domain import SealRequest

    def observed(operation: str, level: str, outcome: str) -> float:
        return REGISTRY.get_sample_value("motcua_signing_duration_seconds_count",
                                         {"operation": operation, "level": level, "outcome": outcome}) or 0

    config = EngineConfig(softhsm_token.module, softhsm_token.label, str(softhsm_token.pin_file),
                          str(dev_pki.root_pem_file), dev_pki.tsa_url)
    signer = SignerPool(config, 1)
    try:
        signed = signer(draft, request_for(draft))
        sealed = signer.seal(draft, SealRequest(unit=SEAL))
        before = {key: observed(*key) for key in (("sign", signed.level, "ok"), ("seal", sealed.level, "ok"),
                                                  ("sign", "none", "refused"))}
        signer(draft, request_for(draft))
        signer.seal(draft, SealRequest(unit=SEAL))
        with pytest.raises(SigningRefused):
            signer(draft, request_for(draft, personal="sign-nobody"))
    finally:
        signer.close()
    assert signed.level.endswith("B-LT") and sealed.level == signed.level
    assert {key: observed(*key) - n for key, n in before.items()} == dict.fromkeys(before, 1)


def test_a_signed_result_counts_the_official_signature_and_the_seal_in_the_calling_process(pki, draft):
    from prometheus_client import REGISTRY

    from signing.adapters.signer_pool import raise_for, sign_outcome

    def made(kind: str) -> float:
        return REGISTRY.get_sample_value("motcua_signatures_total", {"kind": kind}) or 0.0

    before = {kind: made(kind) for kind in ("official", "seal", "document_timestamp")}
    result = raise_for(sign_outcome(pki, draft, request_for(draft).to_dict()))
    assert result.level == "B-LT"
    assert {kind: made(kind) - n for kind, n in before.items()} == {"official": 1, "seal": 1, "document_timestamp": 0}


def test_the_stamp_font_is_cut_once_per_process_however_its_file_is_named():
    """The pool's processes cut it when they start (signer_pool.warm_up); signing must find that cut."""
    assert stamp_font() is stamp_font(DEFAULT_FONT) is stamp_font(str(DEFAULT_FONT))
