"""PAdES signing and validation of PDFs with pyHanko.

:func:`sign_pdf` puts two signatures into a draft, each in its own incremental update so the
first stays valid: the official's personal signature (field ``Sig_Official``, blue stamp), then
the organisation seal (field ``Sig_Seal``, red stamp overlapping the left third of the personal
one). CMS sub-filter ``ETSI.CAdES.detached``, SHA-256, and an RFC 3161 signature timestamp from
the key source's timestamp authority (PAdES B-T) when it has one.

:func:`verify_pdf` answers, for each signature: intact, trusted (against the given roots, offline),
who, when, and how much of the file it covers.

Everything here is synchronous, CPU-bound and free of module-level mutable state: an eventlet
service calls it through ``eventlet.tpool``. pyHanko runs its own ``asyncio`` loop inside, so do
not call these functions from a thread that is already running an asyncio loop.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Protocol

from asn1crypto import cms, pem
from asn1crypto import x509 as asn1_x509
from fontTools.ttLib import TTFont
from pyhanko.pdf_utils import content, layout
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from signing.domain import (
    AlreadySigned,
    AppliedSignature,
    NotAPdf,
    SignatureReport,
    SignedPdf,
    SignerRef,
    SignerRole,
    SigningRequest,
    check_pdf_bytes,
)

DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core
FIELD_NAMES = {SignerRole.PERSONAL: "Sig_Official", SignerRole.SEAL: "Sig_Seal"}
REASONS = {SignerRole.PERSONAL: "Ký duyệt kết quả hồ sơ {dossier}",
           SignerRole.SEAL: "Đóng dấu kết quả hồ sơ {dossier}"}
STAMP_TEXTS = {SignerRole.PERSONAL: "Người ký:\n%(signer)s\n%(ts)s",
               SignerRole.SEAL: "Cơ quan:\n%(signer)s\n%(ts)s"}
# The seal covers the left third of the personal stamp: its text keeps to the right, the seal's
# to the left, so both stay readable.
TEXT_ALIGN = {SignerRole.PERSONAL: layout.AxisAlignment.ALIGN_MAX, SignerRole.SEAL: layout.AxisAlignment.ALIGN_MIN}
BLUE = (0.05, 0.2, 0.7)
RED = (0.8, 0.05, 0.05)
COLOURS = {SignerRole.PERSONAL: (BLUE, b"0.88 0.92 1 rg"), SignerRole.SEAL: (RED, b"1 0.88 0.88 rg")}
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # ISO 8601
# Layout on the last page, in points: the stamps sit above the bottom right corner, the seal
# shifted left so it covers the left third of the personal stamp.
STAMP_WIDTH, STAMP_HEIGHT, PAGE_MARGIN = 180, 60, 48
SEAL_OVERLAP = 1 / 3
FONT_SIZE = 9
# Tables the stamps do not need (Vietnamese text in NFC needs no shaping): dropping them first
# makes embedding a subset of DejaVuSans take ~30 ms instead of ~700 ms per signature.
UNUSED_FONT_TABLES = ("GSUB", "GPOS", "GDEF", "FFTM", "MATH", "kern")


class KeySource(Protocol):
    """Where signers and the timestamp authority come from (the dev PKI now, PKCS#11 later)."""

    def signer(self, signer_id: str, role: SignerRole) -> signers.Signer: ...

    def timestamper(self) -> TimeStamper | None: ...


def sign_pdf(pdf_bytes: bytes, request: SigningRequest, pki: KeySource) -> bytes:
    """The draft signed by the official, then sealed; returns the signed PDF's bytes."""
    return apply_signatures(pdf_bytes, request, pki).data


def apply_signatures(
    pdf_bytes: bytes, request: SigningRequest, pki: KeySource, *, font_file: Path = DEFAULT_FONT
) -> SignedPdf:
    """Like :func:`sign_pdf`, also telling who signed when (the signer port of the use case).

    Raises :class:`NotAPdf` for anything that is not a readable, unencrypted PDF,
    :class:`AlreadySigned` if the draft carries signatures, :class:`UnknownSigner` from the key
    source. The signing order comes from the request, which enforces the domain rule.
    """
    reader = _open(pdf_bytes)
    if reader.embedded_signatures:
        raise AlreadySigned([s.field_name for s in reader.embedded_signatures])
    boxes = stamp_boxes(_last_page_box(reader))
    # Load every key before the first signature: an unknown signer fails before any work.
    keyed = [(ref, pki.signer(ref.signer_id, ref.role)) for ref in request.signers]
    timestamper = pki.timestamper()
    font = StampFont(_plain_font(font_file))

    data = pdf_bytes
    for ref, signer in keyed:
        data = _sign_once(data, ref, signer, timestamper, boxes[ref.role], request, font)
    return SignedPdf(data=data, signatures=_applied(data))


def stamp_boxes(page_box: tuple[float, float, float, float]) -> dict[SignerRole, tuple[int, int, int, int]]:
    """Where the two stamps go on a page with this media box (``x0, y0, x1, y1``)."""
    x0, y0, x1, y1 = page_box
    margin = min(PAGE_MARGIN, (x1 - x0) / 10, (y1 - y0) / 10)
    # personal + the seal's part that sticks out to its left must fit between the margins
    width = min(STAMP_WIDTH, (x1 - x0 - 2 * margin) / (2 - SEAL_OVERLAP))
    height = min(STAMP_HEIGHT, (y1 - y0 - 2 * margin))
    px, py = x1 - margin - width, y0 + margin
    sx = px - width * (1 - SEAL_OVERLAP)
    return {
        SignerRole.PERSONAL: _int_box(px, py, px + width, py + height),
        SignerRole.SEAL: _int_box(sx, py, sx + width, py + height),
    }


def verify_pdf(signed_bytes: bytes, trust_roots: Iterable[bytes]) -> list[SignatureReport]:
    """Check every signature of a PDF, in signing order, offline, against these roots (PEM/DER)."""
    reader = _open(signed_bytes)
    context = ValidationContext(trust_roots=[_load_cert(r) for r in trust_roots], allow_fetching=False)
    return [_report(sig, context) for sig in reader.embedded_regular_signatures]


# -- signing -----------------------------------------------------------------------------------


def _sign_once(
    data: bytes, ref: SignerRef, signer: signers.Signer, timestamper: TimeStamper | None,
    box: tuple[int, int, int, int], request: SigningRequest, font: StampFont,
) -> bytes:
    field_name = FIELD_NAMES[ref.role]
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=REASONS[ref.role].format(dossier=request.dossier_code),
        location=request.area,
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer=signer,
        timestamper=timestamper,
        stamp_style=_stamp_style(ref.role, font),
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=-1, box=box),
    )
    writer = IncrementalPdfFileWriter(BytesIO(data))
    # NFC: the stamp font is used without its shaping tables, so combining marks must be composed
    name = unicodedata.normalize("NFC", signer.subject_name or "")
    return pdf_signer.sign_pdf(writer, appearance_text_params={"signer": name}).getvalue()


def _stamp_style(role: SignerRole, font: StampFont) -> TextStampStyle:
    colour, fill = COLOURS[role]
    background = content.RawContent(fill + b" 0 0 100 100 re f", box=layout.BoxConstraints(100, 100))
    return TextStampStyle(
        stamp_text=STAMP_TEXTS[role],
        timestamp_format=TIMESTAMP_FORMAT,
        text_box_style=TextBoxStyle(
            font=font, font_size=FONT_SIZE, text_color=colour, leading=FONT_SIZE + 3
        ),
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=TEXT_ALIGN[role], y_align=layout.AxisAlignment.ALIGN_MID, margins=layout.Margins.uniform(5)
        ),
        border_width=2,
        border_color=colour,
        background=background,
        background_opacity=0.6,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(),
            inner_content_scaling=layout.InnerScaling.STRETCH_FILL,
        ),
    )


@dataclass(frozen=True)
class StampFont(FontEngineFactory):
    """A TrueType font held in memory, embedded as a subset into each stamp that uses it."""

    data: bytes

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return _PerMilleGlyphs(writer=writer, font_handle=BytesIO(self.data), font_size=FONT_SIZE,
                               obj_stream=obj_stream)


class _PerMilleGlyphs(GlyphAccumulator):
    """pyHanko 0.38 writes glyph widths (/W, TJ) in the font's units, but PDF counts them in
    1/1000 em: with DejaVuSans (2048 units per em) the stamp text came out twice as wide as
    measured and ran out of its box. Measure and shape in 1/1000 em instead."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._per_mille = 1000 / self.units_per_em
        self.units_per_em = 1000
        self.hb_font.scale = (1000, 1000)

    def _get_cid_and_width(self, glyph_id: int) -> tuple[int, int]:
        if glyph_id in self._glyphs:
            return self._glyphs[glyph_id]
        cid, width = super()._get_cid_and_width(glyph_id)
        self._glyphs[glyph_id] = result = (cid, round(width * self._per_mille))
        return result


def _plain_font(font_file: Path) -> bytes:
    """The font without the tables the stamps do not use (see :data:`UNUSED_FONT_TABLES`)."""
    font = TTFont(str(font_file), lazy=True)
    try:
        for tag in UNUSED_FONT_TABLES:
            if tag in font:
                del font[tag]
        out = BytesIO()
        font.save(out, reorderTables=False)
        return out.getvalue()
    finally:
        font.close()


def _applied(data: bytes) -> tuple[AppliedSignature, ...]:
    roles = {name: role for role, name in FIELD_NAMES.items()}
    reader = PdfFileReader(BytesIO(data))
    return tuple(
        AppliedSignature(
            role=roles[sig.field_name],
            field_name=sig.field_name,
            signer_name=_common_name(sig.signer_cert),
            signed_at=sig.self_reported_timestamp,
            timestamped_at=_token_time(sig.signer_info),
        )
        for sig in reader.embedded_regular_signatures
    )


# -- validation --------------------------------------------------------------------------------


def _report(sig, context: ValidationContext) -> SignatureReport:
    try:
        status = validate_pdf_signature(sig, signer_validation_context=context)
    except (SignatureValidationError, ValueError) as exc:
        return _broken_report(sig, exc)
    ts = status.timestamp_validity
    coverage = status.coverage
    level = status.modification_level
    return SignatureReport(
        field_name=sig.field_name,
        signer_name=_common_name(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly,
        signing_time=sig.self_reported_timestamp,
        timestamp=ts.timestamp if ts is not None and ts.intact and ts.valid else None,
        timestamp_trusted=bool(ts is not None and ts.intact and ts.valid and ts.trusted),
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        revoked=status.revoked,
        covers_whole_file=coverage == SignatureCoverageLevel.ENTIRE_FILE,
        coverage=coverage.name.lower() if coverage is not None else "unclear",
        modifications=level.name.lower() if level is not None else "unknown",
    )


def _broken_report(sig, exc: Exception) -> SignatureReport:
    try:
        cert = sig.signer_cert
        name, subject = _common_name(cert), cert.subject.human_friendly
    except Exception:  # the CMS may be too broken to name its signer
        name = subject = ""
    return SignatureReport(
        field_name=sig.field_name, signer_name=name, signer_subject=subject, signing_time=None,
        timestamp=None, timestamp_trusted=False, intact=False, valid=False, trusted=False,
        revoked=False, covers_whole_file=False, coverage="unclear", modifications=f"invalid: {exc}",
    )


# -- helpers -----------------------------------------------------------------------------------


def _open(data: bytes) -> PdfFileReader:
    """A reader over ``data`` after checking it is a PDF: header, end marker, parseable, not
    encrypted, with at least one page."""
    check_pdf_bytes(data)
    try:
        reader = PdfFileReader(BytesIO(data))
        encrypted = reader.encrypted
        reader.find_page_for_modification(-1)
        reader.embedded_signatures  # noqa: B018 - parses the signature fields, may fail
    except Exception as exc:  # whatever the parser trips on, the answer is the same
        raise NotAPdf(f"it cannot be parsed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if encrypted:
        raise NotAPdf("it is encrypted")
    return reader


def _last_page_box(reader: PdfFileReader) -> tuple[float, float, float, float]:
    page_ref, _resources = reader.find_page_for_modification(-1)
    box = find_inherited_value_in_tree(page_ref.get_object(), "/MediaBox", "/Parent")
    if box is None or len(box) != 4:
        raise NotAPdf("its last page has no media box")
    x0, y0, x1, y1 = (float(v) for v in box)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _int_box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    return round(x0), round(y0), round(x1), round(y1)


def _common_name(cert: asn1_x509.Certificate) -> str:
    subject = cert.subject.native
    return subject.get("common_name") or subject.get("organization_name") or cert.subject.human_friendly


def _token_time(signer_info: cms.SignerInfo) -> datetime | None:
    """The time of the RFC 3161 signature timestamp token among the unsigned attributes."""
    attrs = signer_info["unsigned_attrs"]
    if attrs.native is None:
        return None
    for attr in attrs:
        if attr["type"].native == "signature_time_stamp_token":
            token = attr["values"][0]
            return token["content"]["encap_content_info"]["content"].parsed["gen_time"].native
    return None


def _load_cert(data: bytes) -> asn1_x509.Certificate:
    if pem.detect(data):
        _type, _headers, data = pem.unarmor(data)
    return asn1_x509.Certificate.load(data)
