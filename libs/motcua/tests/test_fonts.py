"""The DejaVu faces parsed once per process and shared by every document (motcua.fonts).

Each document must still hold every glyph of its own text: read back with poppler's ``pdftotext``,
the text comes out with its diacritics, whatever other documents were laid out or written before or
in between. The parse is counted by fpdf2's own constructor of a parsed face."""

from __future__ import annotations

import multiprocessing
import subprocess
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from fpdf.fonts import TTFFont

from motcua import fonts
from motcua.fonts import FONT, new_document

TEXTS = [
    "Cộng hòa xã hội chủ nghĩa Việt Nam — Độc lập - Tự do - Hạnh phúc",
    "Giấy tiếp nhận hồ sơ và hẹn trả kết quả: Nguyễn Thị Hương, phường Ba Đình",
    "Phiếu yêu cầu bổ sung: thiếu bản vẽ thiết kế; hạn 16 giờ 00 ngày 04/5/2026",
    "Ủy ban nhân dân tỉnh Thanh Hóa — phí 150.000 ₫, hồ sơ № 12",
    "Quyết định giải quyết thủ tục hành chính: ưu tiên, ở ổn định, ữ ỹ ỵ ỷ",
]
STYLES = ("", "B", "I")
CREATED = datetime(2026, 5, 4, 16, 0, tzinfo=UTC)


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The faces fpdf2 parses from now on, the process's parse forgotten first."""
    monkeypatch.setattr(fonts, "_parsed", {})
    parsed: list[str] = []
    original = TTFFont.__init__

    def counting(self, fpdf, font_file_path, fontkey, style, *args, **kwargs):
        parsed.append(fontkey)
        original(self, fpdf, font_file_path, fontkey, style, *args, **kwargs)

    monkeypatch.setattr(TTFFont, "__init__", counting)
    return parsed


def started(text: str) -> FPDF:
    """A document with a page, its text not written yet."""
    document = new_document(FPDF)
    document.set_creation_date(CREATED)  # else the clock's second is in the bytes
    document.add_page()
    return document


def write(document: FPDF, text: str) -> None:
    for style in STYLES:  # every face gets the text: each subsets on its own
        document.set_font(FONT, style, 11)
        document.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")


def rendered(text: str) -> bytes:
    document = started(text)
    write(document, text)
    return bytes(document.output())


def read_back(pdf: bytes, tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return [line for line in unicodedata.normalize("NFC", out).splitlines() if line.strip()]


def test_documents_in_a_row_each_hold_their_own_glyphs_and_the_faces_are_parsed_once(parses, tmp_path):
    pdfs = [rendered(text) for text in TEXTS * 4]
    for n, (pdf, text) in enumerate(zip(pdfs, TEXTS * 4, strict=True)):
        assert read_back(pdf, tmp_path, str(n)) == [text] * len(STYLES), n
    assert sorted(parses) == ["dejavu", "dejavuB", "dejavuI"]


def test_interleaved_documents_never_share_subsetting_state(parses, tmp_path):
    a, b = started(TEXTS[0]), started(TEXTS[1])  # A gets a page, B gets a page
    write(a, TEXTS[0])  # A writes, then B writes other letters
    write(b, TEXTS[1])
    pdf_a = bytes(a.output())  # A is written out (its faces subset) before B is
    c = started(TEXTS[3])
    pdf_b = bytes(b.output())
    write(c, TEXTS[3])
    pdf_c = bytes(c.output())
    assert read_back(pdf_a, tmp_path, "a") == [TEXTS[0]] * 3
    assert read_back(pdf_b, tmp_path, "b") == [TEXTS[1]] * 3
    assert read_back(pdf_c, tmp_path, "c") == [TEXTS[3]] * 3
    assert len(parses) == 3


def test_many_documents_laid_out_together_then_written_in_reverse(parses, tmp_path):
    documents = [(started(text), text) for text in TEXTS * 3]
    for document, text in documents:
        write(document, text)
    for n, (document, text) in reversed(list(enumerate(documents))):
        assert read_back(bytes(document.output()), tmp_path, str(n)) == [text] * 3, n
    assert len(parses) == 3


@pytest.mark.parametrize("unusual", ["Dvořák, Łódź", "Ωμέγα, Привет"])  # Latin beyond Vietnamese; the whole face
def test_letters_beyond_the_vietnamese_repertoire_are_embedded_too(unusual, tmp_path):
    text = f"{TEXTS[0]} {unusual}"
    assert read_back(rendered(text), tmp_path, "u") == [text] * 3
    assert read_back(rendered(TEXTS[1]), tmp_path, "after") == [TEXTS[1]] * 3  # the next one as usual


def test_the_same_text_gives_the_same_bytes():
    assert rendered(TEXTS[2]) == rendered(TEXTS[2])
    assert rendered(TEXTS[2]) != rendered(TEXTS[3])


def test_threads_racing_for_the_first_parse_each_get_whole_documents(parses, tmp_path):
    with ThreadPoolExecutor(4) as pool:
        pdfs = list(pool.map(rendered, TEXTS * 4))
    for n, (pdf, text) in enumerate(zip(pdfs, TEXTS * 4, strict=True)):
        assert read_back(pdf, tmp_path, str(n)) == [text] * 3, n
    assert len(parses) % 3 == 0 and 3 <= len(parses) <= 12  # a lost race parses again; one result stays


def _render_in_child(text: str, queue) -> None:
    queue.put(rendered(text))


def test_a_forked_process_uses_the_parents_parse(tmp_path):
    rendered(TEXTS[0])  # parsed in the parent
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_render_in_child, args=(text, queue)) for text in TEXTS[1:3]]
    for child in children:
        child.start()
    pdfs = sorted((queue.get(timeout=60) for _ in children), key=len)
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert sorted(read_back(pdf, tmp_path, str(n))[0] for n, pdf in enumerate(pdfs)) == sorted(TEXTS[1:3])
    assert read_back(rendered(TEXTS[3]), tmp_path, "parent") == [TEXTS[3]] * 3


def test_fpdf2s_parsed_face_has_the_attributes_the_copy_knows():
    """A new fpdf2 attribute may be per-document state the copy must renew: look, then list it."""
    assert set(TTFFont.__slots__) == {
        "i", "type", "name", "desc", "glyph_ids", "_hbfont", "sp", "ss", "up", "ut", "cw", "ttffile", "fontkey",
        "emphasis", "scale", "subset", "cmap", "ttfont", "missing_glyphs", "biggest_size_pt", "color_font",
        "unicode_range", "palette_index", "is_compressed", "is_cff", "is_cid_keyed", "is_symbol", "cff_ros",
        "collection_font_number"}


def test_a_document_is_cut_from_the_smallest_cut_holding_its_letters():
    new_document(FPDF)
    regular = fonts._parsed[FONT][0]  # noqa: SLF001

    def cut_for(text: str) -> int:
        names = [".notdef", *(regular.font.cmap[ord(c)] for c in set(text))]
        return [cut.data for cut in regular.cuts].index(regular.bytes_for(names))

    assert [cut_for(text) for text in (" ".join(TEXTS), "Dvořák", "Ωμέγα")] == [0, 1, 2]
    assert [len(cut.glyphs) < 400 for cut in regular.cuts] == [True, False, False]


def test_a_document_rewound_by_unbreakable_still_holds_every_glyph(tmp_path):
    """fpdf2's unbreakable() deep-copies the document and may rewind to the copy: its faces too."""
    document = started(TEXTS[0])
    write(document, TEXTS[0])
    for _ in range(2):  # the second block does not fit the page: rewound, replayed on the next
        with document.unbreakable() as block:
            block.set_font(FONT, "", 11)
            for _ in range(20):
                block.multi_cell(0, 7, f"{TEXTS[1]} Dvořák", new_x="LMARGIN", new_y="NEXT")
    lines = read_back(bytes(document.output()), tmp_path, "rewound")
    assert lines[:3] == [TEXTS[0]] * 3 and set(lines[3:]) == {f"{TEXTS[1]} Dvořák"} and len(lines) == 43
    assert document.page == 2


def test_green_threads_taking_turns_mid_document_each_get_their_own_text(parses, tmp_path):
    import eventlet

    def render(text: str) -> bytes:
        document = started(text)
        eventlet.sleep(0)  # every other document gets its page before this one writes
        write(document, text)
        eventlet.sleep(0)  # and writes before this one is written out
        return bytes(document.output())

    pool = eventlet.GreenPool(len(TEXTS) * 2)
    pdfs = list(pool.imap(render, TEXTS * 2))
    for n, (pdf, text) in enumerate(zip(pdfs, TEXTS * 2, strict=True)):
        assert read_back(pdf, tmp_path, str(n)) == [text] * 3, n
    assert len(parses) == 3


def test_a_process_warmed_up_at_its_start_renders_its_first_document_without_parsing(parses, tmp_path):
    fonts.warm_up(FPDF)
    assert sorted(parses) == ["dejavu", "dejavuB", "dejavuI"]
    parses.clear()
    assert read_back(rendered(TEXTS[1]), tmp_path, "first") == [TEXTS[1]] * 3
    assert parses == []
