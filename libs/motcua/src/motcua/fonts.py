"""The fonts the platform's PDFs are set in: DejaVu (Debian's fonts-dejavu-core), which has every
Vietnamese letter. The kernel does not import fpdf2: the caller passes its document class.

Each document parses the TrueType files again (fpdf2's ``add_font``). Copying a document that had
them added once would be cheaper, but fpdf2 shares the parsed font between copies and subsets it in
place when a copy is written out, so the next document lacks glyphs; that cost stays until fpdf2
can share a parsed font safely (throughput issue).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from motcua import metrics

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"
FACES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}

D = TypeVar("D")


def new_document(cls: type[D], page_format: str = "A4") -> D:
    """A new, empty ``cls`` (fpdf2's ``FPDF`` or a subclass) with the DejaVu faces added under the
    family name :data:`FONT`."""
    document = cls(format=page_format)
    for style, file in FACES.items():
        document.add_font(FONT, style, str(FONT_DIR / file))
    return document


def pdf_bytes(document: Any, form: str) -> bytes:
    """The finished document's bytes (fpdf2's ``output``), counted as a PDF of ``form`` rendered:
    every platform PDF is written out here, the cost accounting's one place for them."""
    data = bytes(document.output())
    metrics.pdf_rendered(form)
    return data
