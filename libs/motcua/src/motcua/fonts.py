"""The fonts the platform's PDFs are set in: DejaVu (Debian's fonts-dejavu-core), which has every
Vietnamese letter. The kernel does not import fpdf2: the caller passes its document class.

Each face is parsed once per process (fpdf2's ``add_font``: cmap, every glyph's width, metrics;
~60 ms a face) and every document gets its own copy of the parsed face. The copy shares only what
fpdf2 never changes after parsing (cmap, glyph ids, descriptor, names) and has its own subsetting
state: the glyphs it used, the widths table (fpdf2 inserts into it on a miss) and the fontTools
font fpdf2 subsets *in place* when the document is written out. That last one is why a document
copied from one that had the fonts added loses glyphs: the copies share fpdf2's parsed font, cut
down to the first document's letters when it is written.

Each document's fontTools font is opened on output from bytes kept in memory: the smallest of the
face's cuts (:data:`REPERTOIRES`, made once: Vietnamese ~350 glyphs, Latin ~1,570, then the whole
face's ~6,000) that holds every glyph the document used, which makes fpdf2's own subsetting several
times cheaper than from the whole face. It is opened without recalculating bounding boxes: the
glyphs' boxes in the cut are right for any subset of it (only the face's overall box and maxima
stay those of the cut, wider than a subset needs, which PDF readers allow), and fontTools then
writes each kept glyph's bytes as they are instead of decoding and re-encoding its outline, which
was the larger part of writing a document out. Same text, same bytes.

Nothing here holds an open file, so a forked process uses its parent's parse as is. There is no
lock (a green lock would not serve the eventlet tpool's OS threads): the first documents of
several threads may each parse the faces, and one result stays. The copy knows fpdf2's
``TTFFont`` attributes (fpdf2 is pinned; the kernel's font tests fail when they change).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

from motcua import metrics

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"
FACES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}

D = TypeVar("D")


def new_document(cls: type[D], page_format: str = "A4") -> D:
    """A new, empty ``cls`` (fpdf2's ``FPDF`` or a subclass) with the DejaVu faces added under the
    family name :data:`FONT`, parsed once per process."""
    document = cls(format=page_format)
    for face in _parsed_faces(cls):
        _add_own_copy(document, face)
    return document


def warm_up(cls: type) -> None:
    """Parse the faces and cut them now (~1 s of CPU): every process that renders calls this when
    it starts, before it serves or consumes, so that no request pays for the process's first
    document. ``cls`` as for :func:`new_document`."""
    _parsed_faces(cls)


# What documents are cut from, smallest first: fpdf2 subsets a document's font on output, and the
# smaller the font it starts from, the cheaper. VIETNAMESE: ASCII, Latin-1, every Vietnamese letter
# (Ă Đ Ĩ Ũ Ơ Ư and the tone-marked vowels of Latin Extended Additional), its combining marks,
# typographic punctuation, ₫ and № (~350 glyphs). LATIN: all of Latin with combining marks,
# punctuation, currency, letterlike signs, arrows and maths (~1,570). Then the whole face (~6,000).
VIETNAMESE = (*range(0x20, 0x7F), *range(0xA0, 0x100), 0x102, 0x103, 0x110, 0x111, 0x128, 0x129, 0x168, 0x169,
              0x1A0, 0x1A1, 0x1AF, 0x1B0, *range(0x300, 0x304), 0x309, 0x323, *range(0x1EA0, 0x1EFA),
              *range(0x2010, 0x2027), 0x20AB, 0x2116)
LATIN = (*range(0x20, 0x250), *range(0x300, 0x370), *range(0x1E00, 0x1F00), *range(0x2000, 0x2070),
         *range(0x20A0, 0x20D0), *range(0x2100, 0x2200), *range(0x2190, 0x2300))
REPERTOIRES = (VIETNAMESE, LATIN)


@dataclass(frozen=True)
class _Cut:
    glyphs: frozenset[str]
    data: bytes


@dataclass(frozen=True)
class _ParsedFace:
    font: Any  # fpdf2's TTFFont, its fontTools font closed: never written out itself
    cuts: tuple[_Cut, ...]  # the face cut to each repertoire, smallest first, then whole

    def bytes_for(self, glyph_names: list[str]) -> bytes:
        """The smallest cut of the face that holds these glyphs."""
        return next((cut.data for cut in self.cuts if cut.glyphs.issuperset(glyph_names)), self.cuts[-1].data)


_parsed: dict[str, tuple[_ParsedFace, ...]] = {}  # the process's one parse, under FONT


def _parsed_faces(cls: type) -> tuple[_ParsedFace, ...]:
    if FONT not in _parsed:
        _parsed[FONT] = _parse(cls)
    return _parsed[FONT]


def _parse(cls: type) -> tuple[_ParsedFace, ...]:
    """The faces parsed by fpdf2 into a scratch document of ``cls`` that is never written out."""
    from fontTools.ttLib import TTFont  # fpdf2's own dependency: there wherever documents are made

    scratch: Any = cls()
    faces = []
    for style, file in FACES.items():
        path = FONT_DIR / file
        scratch.add_font(FONT, style, str(path))
        font = scratch.fonts[f"{FONT.lower()}{style}"]
        if font.color_font is not None or font.is_cff:
            raise ValueError(f"{path}: only plain TrueType faces can be shared between documents")
        font.close()  # no file handle survives into forked processes
        whole = path.read_bytes()
        cuts = [_Cut(frozenset(TTFont(BytesIO(whole)).getGlyphOrder()), whole)]
        for repertoire in reversed(REPERTOIRES):  # each cut from the next larger one
            cuts.insert(0, _cut(cuts[0].data, repertoire))
        faces.append(_ParsedFace(font, tuple(cuts)))
    return tuple(faces)


def _cut(data: bytes, repertoire: tuple[int, ...]) -> _Cut:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(BytesIO(data), recalcTimestamp=False)
    options = subset.Options(glyph_names=True, notdef_outline=True, recommended_glyphs=True, hinting=True)
    options.drop_tables += ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "kern"]  # fpdf2 drops them too
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=repertoire)
    subsetter.subset(font)
    out = BytesIO()
    font.save(out)
    return _Cut(frozenset(font.getGlyphOrder()), out.getvalue())


_shared_classes: dict[type, type] = {}


def _shared_class(ttf_font: type) -> type:
    """fpdf2's TTFFont whose fontTools font is opened when fpdf2 first asks for it (on output),
    from the face's smallest cut holding the glyphs the document used. fpdf2's ``unbreakable()``
    deep-copies the document to rewind it: the copy keeps choosing late, at output, not at the copy."""
    if ttf_font not in _shared_classes:

        def ttfont(font: Any) -> Any:
            if font._own_ttfont is None:
                from fontTools.ttLib import TTFont

                data = font._face.bytes_for(font.subset.get_all_glyph_names())
                font._own_ttfont = TTFont(BytesIO(data), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
            return font._own_ttfont

        def deep_copy(font: Any, memo: dict[int, Any]) -> Any:
            twin = memo[id(font)] = _copy(font, font._face)  # before the subset: it refers back to the font
            twin._own_ttfont = font._own_ttfont
            twin.cw, twin.subset = copy.deepcopy(font.cw, memo), copy.deepcopy(font.subset, memo)
            twin.missing_glyphs = list(font.missing_glyphs)
            return twin

        _shared_classes[ttf_font] = type("SharedFace", (ttf_font,), {
            "__slots__": ("_face", "_own_ttfont"), "ttfont": property(ttfont), "__deepcopy__": deep_copy})
    return _shared_classes[ttf_font]


def _copy(font: Any, face: _ParsedFace) -> Any:
    """A SharedFace with the attributes of ``font`` (shared, not copied), its fontTools font unopened."""
    twin = _shared_class(type(face.font)).__new__(_shared_class(type(face.font)))
    for name in type(face.font).__slots__:
        if name != "ttfont" and hasattr(font, name):
            setattr(twin, name, getattr(font, name))
    twin._face, twin._own_ttfont = face, None
    return twin


def _add_own_copy(document: Any, face: _ParsedFace) -> None:
    """What ``add_font`` would have added, without parsing: the parsed face's immutable part, and a
    fresh copy of everything fpdf2 changes while it lays out or writes the document."""
    parsed = face.font
    font = _copy(parsed, face)
    font.i = len(document.fonts) + 1
    font.cw = defaultdict(parsed.cw.default_factory, parsed.cw)  # a read of a missing char inserts it
    font.subset = type(parsed.subset)(font)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None  # the shaping engine holds per-font caches
    document.fonts[font.fontkey] = font


def pdf_bytes(document: Any, form: str) -> bytes:
    """The finished document's bytes (fpdf2's ``output``), counted as a PDF of ``form`` rendered:
    every platform PDF is written out here, the cost accounting's one place for them."""
    data = bytes(document.output())
    metrics.pdf_rendered(form)
    return data
