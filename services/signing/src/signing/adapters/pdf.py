"""PAdES signing and validation of PDFs with pyHanko.

:func:`apply_signatures` puts two signatures into a draft, each in its own incremental update so
the first stays valid: the official's personal signature (field ``Sig_Official``, blue stamp:
name, title, unit, local signing time), then the organisation seal (field ``Sig_Seal``, red stamp
naming the issuing body, overlapping the left third of the personal one). CMS sub-filter
``ETSI.CAdES.detached``, SHA-256, an RFC 3161 signature timestamp from the key source's TSA
(PAdES B-T) and, when the key source gives a validation context, the certificates and revocation
data of both chains in the document security store (PAdES B-LT); B-LTA adds a document timestamp.

Before the first signature every signer's certificate is validated (chain, expiry, revocation
fetched from the CA's OCSP/CRL): a revoked, expired or untrusted certificate refuses the whole
request (:class:`signing.domain.SigningRefused`) and nothing is signed.

:func:`validate_pdf` answers, for each signature: intact, trusted (against the given roots), who,
when (timestamp token), level, revocation at signing time (from the embedded data, the timestamp's
time as the validation time), and what later revisions changed (pyHanko's diff analysis).

Everything here is synchronous, CPU-bound and free of module-level mutable state except the font
cache and the CMS sizes per signer (:func:`_bytes_reserved`); the worker runs it in a process
pool. pyHanko runs its own ``asyncio`` loop inside, so do not call these functions from a thread
that is already running an asyncio loop.
"""

from __future__ import annotations

import asyncio
import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Protocol

from asn1crypto import cms, core, pem
from asn1crypto import x509 as asn1_x509
from fontTools.ttLib import TTFont
from pyhanko.pdf_utils import content, generic, layout
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import extract_certificate_info, extract_signer_info
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import extract_self_reported_ts
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as cv_errors

from motcua.errors import Unavailable
from signing.domain import (
    AlreadySigned,
    AppliedSignature,
    NotAPdf,
    SealRequest,
    SignatureReport,
    SignedPdf,
    SignerRef,
    SignerRole,
    SigningRefused,
    SigningRequest,
    check_pdf_bytes,
)

DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core
FIELD_NAMES = {SignerRole.PERSONAL: "Sig_Official", SignerRole.SEAL: "Sig_Seal"}
REASONS = {SignerRole.PERSONAL: "Ký duyệt kết quả hồ sơ {dossier}",
           SignerRole.SEAL: "Đóng dấu kết quả hồ sơ {dossier}"}
SEAL_REASON = "Đóng dấu {label}"  # a form sealed by its issuing unit (apply_seal)
STAMP_TEXTS = {SignerRole.PERSONAL: "Người ký: %(name)s\nChức vụ: %(title)s\nĐơn vị: %(unit)s\nThời gian ký: %(time)s",
               SignerRole.SEAL: "Cơ quan ban hành:\n%(unit)s\nThời gian ký: %(time)s"}
# The seal covers the left third of the personal stamp: its text keeps to the right, the seal's
# to the left, so both stay readable.
TEXT_ALIGN = {SignerRole.PERSONAL: layout.AxisAlignment.ALIGN_MAX, SignerRole.SEAL: layout.AxisAlignment.ALIGN_MIN}
BLUE = (0.05, 0.2, 0.7)
RED = (0.8, 0.05, 0.05)
COLOURS = {SignerRole.PERSONAL: (BLUE, b"0.88 0.92 1 rg"), SignerRole.SEAL: (RED, b"1 0.88 0.88 rg")}
# Vietnam's civil time (no daylight saving): the stamps show the local signing time.
VIETNAM = timezone(timedelta(hours=7), "GMT+7")
LOCAL_TIME_FORMAT = "%d/%m/%Y %H:%M:%S (GMT+7)"
# Layout on the last page, in points: the stamps sit above the bottom right corner, the seal
# shifted left so it covers the left third of the personal stamp.
STAMP_WIDTH, STAMP_HEIGHT, PAGE_MARGIN = 200, 66, 48
SEAL_OVERLAP = 1 / 3
FONT_SIZE = 8
# Tables the stamps do not need (Vietnamese text in NFC needs no shaping): dropping them first
# makes embedding a subset of DejaVuSans take ~30 ms instead of ~700 ms per signature.
UNUSED_FONT_TABLES = ("GSUB", "GPOS", "GDEF", "FFTM", "MATH", "kern")
STAMP_UNICODES = [*range(0x20, 0x7F), *range(0xA0, 0x180), *range(0x1A0, 0x1B1), *range(0x300, 0x324),
                  *range(0x1EA0, 0x1EFA), *range(0x2010, 0x2027), 0x2030, 0x2039, 0x203A, 0x20AB]
LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
# What may follow a signature without changing what it signed: nothing, DSS/document timestamps,
# filling a form field (the seal's own signature field).
ALLOWED_UPDATES = ("none", "lta_updates", "form_filling")


@dataclass(frozen=True)
class SignerIdentity:
    """What a stamp says about a signer (from its certificate) and how a refusal names it."""

    name: str
    title: str
    organization: str
    certificate: str  # subject and serial, for messages


class KeySource(Protocol):
    """Where signers, the timestamp authority and revocation data come from (a PKCS#11 token and
    the CA's services in production and development; key files in the file-key benchmark)."""

    lta: bool  # add a document timestamp (PAdES B-LTA)

    def signer(self, ref: SignerRef) -> tuple[signers.Signer, SignerIdentity]:
        """The signer for ``ref``; raises :class:`SigningRefused` (not enrolled, expired...)."""

    def timestamper(self) -> TimeStamper | None: ...

    def validation_context(self) -> ValidationContext | None:
        """A fresh context (revocation fetched now) for one document; None: no B-LT."""


def sign_pdf(pdf_bytes: bytes, request: SigningRequest, pki: KeySource) -> bytes:
    """The draft signed by the official, then sealed; returns the signed PDF's bytes."""
    return apply_signatures(pdf_bytes, request, pki).data


def apply_signatures(
    pdf_bytes: bytes, request: SigningRequest, pki: KeySource, *, font_file: Path = DEFAULT_FONT,
    now: datetime | None = None,
) -> SignedPdf:
    """Like :func:`sign_pdf`, also telling who signed when and the level reached (the signer port
    of the use case).

    Raises :class:`NotAPdf` for anything that is not a readable, unencrypted PDF,
    :class:`AlreadySigned` if the draft carries signatures, :class:`SigningRefused` when a signer
    is not enrolled or its certificate is revoked, expired or untrusted (before anything is
    signed), :class:`Unavailable` when the TSA or the CA's revocation services do not answer.
    """
    reader = _open(pdf_bytes)
    if reader.embedded_signatures:
        raise AlreadySigned([s.field_name for s in reader.embedded_signatures])
    boxes = stamp_boxes(_last_page_box(reader))
    # Every signer and its certificate's status before the first signature: nothing half-signed.
    keyed = [(ref, *pki.signer(ref)) for ref in request.signers]
    timestamper = pki.timestamper()
    context = pki.validation_context()
    font = stamp_font(font_file)
    local = (now or datetime.now(UTC)).astimezone(VIETNAM).strftime(LOCAL_TIME_FORMAT)
    return asyncio.run(_sign_all(pdf_bytes, request, keyed, timestamper, context, pki.lta, boxes, font, local))


async def _sign_all(pdf_bytes, request, keyed, timestamper, context, lta, boxes, font, local) -> SignedPdf:
    if context is not None:
        for _ref, signer, identity in keyed:
            await _check_certificate(signer, identity, context)
    data, applied = pdf_bytes, []
    try:
        for ref, signer, identity in keyed:
            data, signature = await _sign_once(data, ref, signer, identity, timestamper, context,
                                               lta and ref.role is SignerRole.SEAL, boxes[ref.role], font, local,
                                               reason=REASONS[ref.role].format(dossier=request.dossier_code),
                                               location=request.area)
            applied.append(signature)
    except SigningRefused:
        raise
    except Exception as exc:  # the TSA or the CA's OCSP/CRL out of reach: try again later
        if _is_network(exc):
            raise Unavailable(f"signing services out of reach: {type(exc).__name__}: {str(exc)[:300]}") from exc
        raise
    return SignedPdf(data=data, signatures=tuple(applied), level=_level(lta, timestamper, context))


def _level(lta: bool, timestamper, context) -> str:
    return "B-LTA" if (lta and context is not None) else "B-LT" if context is not None else \
        "B-T" if timestamper is not None else "B-B"


def apply_seal(pdf_bytes: bytes, seal: SealRequest, pki: KeySource) -> SignedPdf:
    """A form the platform issues sealed by its unit: one organisation signature (field
    ``Sig_Seal``), invisible (no image: DOMAIN.md "Signing", attachments), PAdES at the key
    source's level (B-T with a TSA, B-LT with revocation data, B-LTA when ``pki.lta``). The same
    checks and errors as :func:`apply_signatures`: the seal's certificate is validated before
    signing (:class:`SigningRefused` naming the unit), :class:`Unavailable` when the TSA or the
    CA does not answer, :class:`NotAPdf`/:class:`AlreadySigned` for a document that cannot be sealed."""
    reader = _open(pdf_bytes)
    if reader.embedded_signatures:
        raise AlreadySigned([s.field_name for s in reader.embedded_signatures])
    ref = seal.signer
    signer, identity = pki.signer(ref)
    timestamper = pki.timestamper()
    context = pki.validation_context()
    return asyncio.run(_seal(pdf_bytes, seal, ref, signer, identity, timestamper, context, pki.lta))


async def _seal(pdf_bytes, seal: SealRequest, ref, signer, identity, timestamper, context, lta) -> SignedPdf:
    if context is not None:
        await _check_certificate(signer, identity, context)
    try:
        data, signature = await _sign_once(pdf_bytes, ref, signer, identity, timestamper, context, lta, None, None,
                                           "", reason=SEAL_REASON.format(label=seal.label or "văn bản"),
                                           location=seal.unit)
    except SigningRefused:
        raise
    except Exception as exc:  # the TSA or the CA's OCSP/CRL out of reach: try again later
        if _is_network(exc):
            raise Unavailable(f"signing services out of reach: {type(exc).__name__}: {str(exc)[:300]}") from exc
        raise
    return SignedPdf(data=data, signatures=(signature,), level=_level(lta, timestamper, context))


def _is_network(exc: BaseException) -> bool:
    from pyhanko.sign.timestamps import TimestampRequestError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, TimestampRequestError | OSError | cv_errors.InsufficientRevinfoError |
                      cv_errors.OCSPFetchError | cv_errors.CRLFetchError):
            return True
        if type(exc).__module__.startswith(("requests", "urllib3", "aiohttp")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


async def _check_certificate(signer: signers.Signer, identity: SignerIdentity, context: ValidationContext) -> None:
    """The signer's certificate must chain to a trusted root and be valid and unrevoked now."""
    cert = signer.signing_cert
    validator = CertificateValidator(cert, intermediate_certs=list(signer.cert_registry), validation_context=context)
    try:
        await validator.async_validate_usage({"non_repudiation"})
    except cv_errors.RevokedError as exc:
        raise SigningRefused(f"the certificate {identity.certificate} is revoked ({exc})") from None
    except cv_errors.ExpiredError as exc:
        raise SigningRefused(f"the certificate {identity.certificate} has expired ({exc})") from None
    except cv_errors.NotYetValidError as exc:
        raise SigningRefused(f"the certificate {identity.certificate} is not valid yet ({exc})") from None
    except (cv_errors.InsufficientRevinfoError, cv_errors.OCSPFetchError, cv_errors.CRLFetchError) as exc:
        raise Unavailable(f"no revocation status for {identity.certificate}: {exc}") from exc
    except (cv_errors.PathBuildingError, cv_errors.PathValidationError, cv_errors.InvalidCertificateError) as exc:
        raise SigningRefused(f"the certificate {identity.certificate} is not trusted ({exc})") from None


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
    return validate_pdf(signed_bytes, trust_roots)


def validate_pdf(signed_bytes: bytes, trust_roots: Iterable[bytes], *, fetch: bool = False) -> list[SignatureReport]:
    """Check every signature of a PDF, in signing order, against these roots (PEM/DER).

    A signature with revocation data in the document security store is checked at the time of its
    timestamp token with that data only (PAdES B-LT: still valid after a later revocation or
    expiry); one without is checked now, fetching revocation data when ``fetch``. Raises
    :class:`NotAPdf` when the bytes are not a readable, unencrypted PDF."""
    reader = _open(signed_bytes)
    roots = [_load_cert(r) for r in trust_roots]
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except Exception:  # no DSS (B-B, B-T) or an unreadable one
        dss = None
    doc_timestamps = list(reader.embedded_timestamp_signatures)
    return [_report_or_broken(sig, roots, dss, doc_timestamps, fetch) for sig in reader.embedded_regular_signatures]


def _report_or_broken(sig, roots, dss, doc_timestamps, fetch: bool) -> SignatureReport:
    try:
        return _report(sig, roots, dss, doc_timestamps, fetch)
    except Exception as exc:  # noqa: BLE001 - whatever a broken signature makes the checks raise
        return _broken_report(sig, exc)


# -- signing -----------------------------------------------------------------------------------


async def _sign_once(
    data: bytes, ref: SignerRef, signer: signers.Signer, identity: SignerIdentity,
    timestamper: TimeStamper | None, context: ValidationContext | None, lta: bool,
    box: tuple[int, int, int, int] | None, font: StampFont | None, local_time: str, *, reason: str, location: str,
) -> tuple[bytes, AppliedSignature]:
    """One signature in its own incremental update, and what it is; ``box`` None: invisible (no stamp)."""
    field_name = FIELD_NAMES[ref.role]
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=identity.name,
        validation_context=context,
        embed_validation_info=context is not None,
        use_pades_lta=lta and context is not None and timestamper is not None,
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer=signer,
        timestamper=timestamper,
        stamp_style=_stamp_style(ref.role, font) if box is not None else None,
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=0 if box is None else -1, box=box),
    )
    writer = IncrementalPdfFileWriter(BytesIO(data))
    reserved = await _bytes_reserved(signer, timestamper)
    # NFC: the stamp font is used without its shaping tables, so combining marks must be composed
    params = None if box is None else {
        key: unicodedata.normalize("NFC", value or "") for key, value in
        {"name": identity.name, "title": identity.title or "—", "unit": identity.organization,
         "time": local_time}.items()}
    signed, cms_bytes, dated = await _sign_keeping_cms(pdf_signer, writer, reserved, params)
    return signed, _applied(ref.role, cms_bytes, dated)


async def _sign_keeping_cms(pdf_signer: signers.PdfSigner, writer: IncrementalPdfFileWriter, reserved: int,
                            params: dict[str, str] | None) -> tuple[bytes, bytes, str]:
    """pyHanko's ``PdfSigner.async_sign_pdf`` step by step (its signing session API), keeping the
    CMS it embeds and the signing time it writes (``/M``): what the signature records is read from
    them rather than from the whole signed file parsed again (≈ 18 % of a result's CPU)."""
    session = pdf_signer.init_signing_session(writer)
    validation_info = await session.perform_presign_validation(writer)
    tbs_document = session.prepare_tbs_document(validation_info=validation_info, bytes_reserved=reserved,
                                                appearance_text_params=params)
    digest, output = tbs_document.digest_tbs_document()
    post_signing = await tbs_document.perform_signature(
        document_digest=digest.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(
            signing_time=session.system_time,
            adobe_revinfo_attr=None if validation_info is None else validation_info.adobe_revinfo_attr,
            cades_signed_attrs=pdf_signer.signature_meta.cades_signed_attr_spec))
    await post_signing.post_signature_processing(output)  # the DSS (B-LT), the document timestamp (B-LTA)
    return output.getvalue(), bytes(post_signing.sig_contents), generic.pdf_date(session.system_time)


# pyHanko sizes the space for the CMS by making a whole dry-run CMS before each signature (a third
# of a result's CPU, measured). For PAdES that size depends only on the signer's certificates and
# the TSA's (dummy) token: the same for every document, so it is worked out once per process, the
# way pyHanko does it (its formula, margin included).
_RESERVED: dict[tuple[bytes, tuple[bytes, ...], str], int] = {}


async def _bytes_reserved(signer: signers.Signer, timestamper: TimeStamper | None) -> int:
    import hashlib

    tsa = "" if timestamper is None else f"{type(timestamper).__name__}:{getattr(timestamper, 'url', id(timestamper))}"
    key = (signer.signing_cert.sha256, tuple(sorted(c.sha256 for c in signer.cert_registry or ())), tsa)
    reserved = _RESERVED.get(key)
    if reserved is None:
        dry = await signer.async_sign(hashlib.sha256().digest(), "sha256", use_pades=True, dry_run=True,
                                      timestamper=timestamper,
                                      signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(UTC)))
        hex_length = len(dry.dump()) * 2
        reserved = _RESERVED[key] = hex_length + 2 * (hex_length // 4)
    return reserved


def stamp_font(font_file: Path = DEFAULT_FONT) -> StampFont:
    """The stamp font, read and trimmed once per process."""
    return _stamp_font(Path(font_file))


@functools.lru_cache(maxsize=4)
def _stamp_font(font_file: Path) -> StampFont:
    return StampFont(_plain_font(font_file))


def _stamp_style(role: SignerRole, font: StampFont) -> TextStampStyle:
    colour, fill = COLOURS[role]
    background = content.RawContent(fill + b" 0 0 100 100 re f", box=layout.BoxConstraints(100, 100))
    return TextStampStyle(
        stamp_text=STAMP_TEXTS[role],
        text_box_style=TextBoxStyle(
            font=font, font_size=FONT_SIZE, text_color=colour, leading=FONT_SIZE + 2
        ),
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=TEXT_ALIGN[role], y_align=layout.AxisAlignment.ALIGN_MID, margins=layout.Margins.uniform(4)
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
    """A TrueType font held in memory, embedded as a subset into each stamp that uses it.

    The subsets are cut once per glyph set and kept (the last :data:`SUBSETS_KEPT`): every stamp
    holds all ten digits whatever its signing time, so its glyphs are those of its signer's name,
    title and unit, and each signer's subset is cut once per process instead of once per stamp."""

    data: bytes
    subsets: dict[frozenset[int], bytes] = field(default_factory=dict, compare=False, repr=False)

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return _PerMilleGlyphs(writer=writer, font_handle=BytesIO(self.data), font_size=FONT_SIZE,
                               obj_stream=obj_stream, subsets=self.subsets)


SUBSETS_KEPT = 512  # a stamp's subset is ~10 KB: a few MB for the signers of a province's units


class _PerMilleGlyphs(GlyphAccumulator):
    """pyHanko 0.38 writes glyph widths (/W, TJ) in the font's units, but PDF counts them in
    1/1000 em: with DejaVuSans (2048 units per em) the stamp text came out twice as wide as
    measured and ran out of its box. Measure and shape in 1/1000 em instead.

    Its subset comes from ``subsets`` when a stamp with the same glyphs was cut before."""

    def __init__(self, *args, subsets: dict[frozenset[int], bytes], **kwargs):
        super().__init__(*args, **kwargs)
        self._per_mille = 1000 / self.units_per_em
        self.units_per_em = 1000
        self.hb_font.scale = (1000, 1000)
        self._subsets = subsets
        cmap = self.tt.getBestCmap()
        for digit in "0123456789":
            self._get_cid_and_width(self.tt.getGlyphID(cmap[ord(digit)]))

    def _extract_subset(self, options=None) -> None:
        glyphs = frozenset(self._glyphs)
        cut = self._subsets.get(glyphs)
        if cut is None:
            super()._extract_subset(options)  # pyHanko's subsetting, in place
            out = BytesIO()
            self.tt.save(out)
            cut = out.getvalue()
            while len(self._subsets) >= SUBSETS_KEPT:
                del self._subsets[next(iter(self._subsets))]  # the oldest first
            self._subsets[glyphs] = cut
        # what pyHanko embeds (its CIDFontType2 writes its font's bytes): the kept subset
        self.cidfont_obj._tt = TTFont(BytesIO(cut), lazy=True, recalcTimestamp=False)  # noqa: SLF001

    def _get_cid_and_width(self, glyph_id: int) -> tuple[int, int]:
        if glyph_id in self._glyphs:
            return self._glyphs[glyph_id]
        cid, width = super()._get_cid_and_width(glyph_id)
        self._glyphs[glyph_id] = result = (cid, round(width * self._per_mille))
        return result


def _plain_font(font_file: Path) -> bytes:
    """The font cut down, once per process, to what the stamps write: the glyphs of Vietnamese
    (Latin, Latin-1, Latin Extended-A, Ơ/Ư, the combining tones, Latin Extended Additional) and
    punctuation, without the tables they do not use (:data:`UNUSED_FONT_TABLES`). Each stamp then
    embeds a subset of ~700 glyphs instead of DejaVuSans's ~6,000: measured, 4 times faster."""
    from fontTools import subset

    font = TTFont(str(font_file), lazy=False)
    try:
        for tag in UNUSED_FONT_TABLES:
            if tag in font:
                del font[tag]
        options = subset.Options()
        options.layout_features = []
        options.hinting = False
        options.notdef_outline = True
        options.name_IDs = ["*"]
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=STAMP_UNICODES)
        subsetter.subset(font)
        out = BytesIO()
        font.save(out, reorderTables=False)
        return out.getvalue()
    finally:
        font.close()


def _applied(role: SignerRole, cms_bytes: bytes, dated: str) -> AppliedSignature:
    """The signature of ``role`` as its CMS (the bytes put into its ``/Contents``) and its
    signature dictionary's ``/M`` record it; the time as pyHanko's validation reads it back (the
    CMS's signing time first: PAdES leaves it out)."""
    signed_data = cms.ContentInfo.load(cms_bytes)["content"]
    signer_info = extract_signer_info(signed_data)
    return AppliedSignature(
        role=role,
        field_name=FIELD_NAMES[role],
        signer_name=_common_name(extract_certificate_info(signed_data).signer_cert),
        signed_at=extract_self_reported_ts(signer_info) or generic.parse_pdf_date(dated),
        timestamped_at=_token_time(signer_info),
    )


# -- validation --------------------------------------------------------------------------------


def _report(sig, roots, dss, doc_timestamps, fetch: bool) -> SignatureReport:
    token_time = _token_time(sig.signer_info)
    has_revinfo = dss is not None and bool(dss.ocsps or dss.crls)
    if has_revinfo and token_time is not None:
        context = dss.as_validation_context({"trust_roots": roots, "allow_fetching": False, "moment": token_time,
                                             "revocation_mode": "hard-fail"})
        ts_context = dss.as_validation_context({"trust_roots": roots, "allow_fetching": False,
                                                "moment": token_time, "revocation_mode": "soft-fail"})
    else:
        context = ValidationContext(trust_roots=roots, allow_fetching=fetch, revocation_mode="soft-fail")
        ts_context = context
    try:
        status = validate_pdf_signature(sig, signer_validation_context=context, ts_validation_context=ts_context)
    except Exception as exc:  # noqa: BLE001 - a hostile or broken signature is an invalid one, never a crash
        return _broken_report(sig, exc)
    ts = status.timestamp_validity
    ts_ok = ts is not None and ts.intact and ts.valid
    coverage = status.coverage
    modification = status.modification_level
    level = "B-B"
    if ts_ok:
        level = "B-T"
        if has_revinfo:
            level = "B-LT"
            if any(t.signed_revision > sig.signed_revision for t in doc_timestamps):
                level = "B-LTA"
    revoked = bool(status.revoked)
    revocation = "revoked" if revoked else "good" if status.trusted else "unknown"
    intact = bool(status.intact and status.valid)
    problems = []
    if not intact:
        problems.append("the signed bytes were changed or the signature does not verify")
    if revoked:
        problems.append("the certificate was revoked at signing time")
    elif not status.trusted:
        problems.append("the certificate does not chain to a trusted root (or its status is unknown)")
    modified = not status.docmdp_ok or _name_of(modification) not in ALLOWED_UPDATES
    if modified:
        problems.append(f"the document was modified after signing ({_name_of(modification)})")
    if ts is not None and not ts_ok:
        problems.append("the timestamp token is invalid")
    if not intact or revoked or modified:
        verdict = "invalid"
    elif not problems:
        verdict = "valid"
    else:
        verdict = "indeterminate"
    return SignatureReport(
        field_name=sig.field_name,
        signer_name=_common_name(status.signing_cert),
        signer_subject=status.signing_cert.subject.human_friendly,
        signer_issuer=status.signing_cert.issuer.human_friendly,
        serial=format(status.signing_cert.serial_number, "x"),
        signing_time=sig.self_reported_timestamp,
        timestamp=ts.timestamp if ts_ok else None,
        timestamp_trusted=bool(ts_ok and ts.trusted),
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        revoked=revoked,
        revocation=revocation,
        level=level,
        covers_whole_file=coverage == SignatureCoverageLevel.ENTIRE_FILE,
        coverage=coverage.name.lower() if coverage is not None else "unclear",
        modifications=_name_of(modification),
        verdict=verdict,
        problems="; ".join(problems),
    )


def _name_of(level) -> str:
    return level.name.lower() if level is not None else "unknown"


def _broken_report(sig, exc: Exception) -> SignatureReport:
    try:
        cert = sig.signer_cert
        name, subject, issuer = _common_name(cert), cert.subject.human_friendly, cert.issuer.human_friendly
        serial = format(cert.serial_number, "x")
    except Exception:  # the CMS may be too broken to name its signer
        name = subject = issuer = serial = ""
    return SignatureReport(
        field_name=sig.field_name, signer_name=name, signer_subject=subject, signer_issuer=issuer, serial=serial,
        signing_time=None, timestamp=None, timestamp_trusted=False, intact=False, valid=False, trusted=False,
        revoked=False, revocation="unknown", level="B-B", covers_whole_file=False, coverage="unclear",
        modifications="unknown", verdict="invalid", problems=f"the signature cannot be checked: {exc}",
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
    if isinstance(attrs, core.Void):  # none (not attrs.native: that converts the whole token, its certificates too)
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
