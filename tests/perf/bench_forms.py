"""What a form costs to render (not a pytest test).

    .venv/bin/python tests/perf/bench_forms.py

For each PDF the platform renders — forms 01 (receipt), 02 (supplement request), 03 (refusal),
04 (apology), 05 (control slip), 06 (a register page of 20 dossiers), the stop notice and the
draft result — with the hand-made cases of their golden tests, it prints the median CPU ms per
render (this process's CPU time: the issue counts CPU per dossier, and other load on a shared
machine stretches wall time, not CPU time):

* ours: the service's own renderer, the DejaVu faces parsed once per process (motcua.fonts);
* bare: the raw baseline, fpdf2 writing the same text (the form's text as pdftotext reads it
  back) line by line on a page, with the same cached faces: no layout, tables, QR code;
* ratio bare/ours (goal ≥ 0.5: the layout costs at most as much as the text itself);
* fresh parse: the service's renderer with the faces parsed again for the document, as every
  render did before the cache (fpdf2's ``add_font`` per face), so the lever shows.

Also the one-time cost of the process's parse, and the CPU of a fresh process's first form 01 with
and without ``motcua.fonts.warm_up`` at its start (what the services do before READY / consuming).
Timings are printed, never asserted.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fpdf import FPDF

import intake.adapters.forms as intake_forms
import routing.adapters.drafts as routing_drafts
import routing.adapters.registers as routing_registers
from motcua import fonts
from motcua.fonts import FACES, FONT, FONT_DIR, new_document
from motcua.worktime import VN_TZ
from routing.application.register import RegisterPage
from routing.domain.kpi766 import Period
from routing.domain.register import RegisterRow

ROOT = Path(__file__).resolve().parents[2]
RUNS = 25  # renders per median (cached); the fresh parse gets a fifth of them
CREATED = datetime(2026, 11, 25, 9, 30, tzinfo=VN_TZ)


def golden(path: str):
    """A golden test module, for its hand-made cases."""
    spec = importlib.util.spec_from_file_location(f"golden_{Path(path).parent.parent.parent.name}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_page() -> RegisterPage:
    at = datetime(2026, 11, 25, 8, 0, tzinfo=VN_TZ)
    rows = [RegisterRow(code=f"000.00.06.H56-261125-{n:04d}", procedure_code="1.004616",
                        procedure_name="Cấp Giấy phép xây dựng đối với công trình không theo tuyến",
                        applicant_name=f"Nguyễn Thị Hương {n}", applicant_contact="Số 12 phố Lê Lai, 0912 345 678",
                        deciding_unit="UBND thị xã Bỉm Sơn", received_at=at + timedelta(minutes=15 * n),
                        due_at=at + timedelta(days=21), sent_at=at + timedelta(hours=2), result_at=None,
                        returned_at=None, status=4, note="") for n in range(1, 21)]
    return RegisterPage("phuong-ba-dinh", Period(at.date(), at.date()), rows, 1, "")


def forms() -> dict[str, Callable[[], bytes]]:
    intake = golden("services/intake/tests/unit/test_forms.py")
    routing = golden("services/routing/tests/unit/test_drafts.py")
    page = register_page()
    return {
        "01 receipt": lambda: intake_forms.render_receipt(intake.RECEIPT),
        "02 supplement request": lambda: routing_drafts.render_supplement_request(**routing.SUPPLEMENT),
        "03 refusal": lambda: intake_forms.render_refusal(intake.REFUSAL),
        "04 apology": lambda: routing_drafts.render_apology(**routing.APOLOGY),
        "05 control slip": lambda: routing_drafts.render_control_slip(routing.SLIP, unit_names=routing.SLIP_NAMES,
                                                                      dated=routing.LATER),
        "06 register page (20)": lambda: routing_registers.register_pdf(page, "UBND Phường Ba Đình"),
        "stop notice": lambda: routing_drafts.render_stop_notice(**routing.STOP),
        "draft result": lambda: routing_drafts.render_draft(**routing.DRAFT),
    }


def text_of(pdf: bytes) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        out = subprocess.run(["pdftotext", file.name, "-"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def bare(lines: list[str]) -> Callable[[], bytes]:
    """fpdf2 alone: the lines on A4 pages in the cached regular face, nothing else."""
    def render() -> bytes:
        pdf = new_document(FPDF)
        pdf.set_creation_date(CREATED)
        pdf.add_page()
        pdf.set_font(FONT, "", 11)
        for line in lines:
            pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
    return render


def parsed_per_document(cls, page_format: str = "A4"):
    """new_document as it was before the cache: fpdf2 parses the three faces for each document."""
    document = cls(format=page_format)
    for style, file in FACES.items():
        document.add_font(FONT, style, str(FONT_DIR / file))
    return document


def median_ms(render: Callable[[], bytes], runs: int) -> float:
    render()
    times = []
    for _ in range(runs):
        start = time.process_time()
        render()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def fresh_parse_ms(render: Callable[[], bytes], runs: int) -> float:
    modules = (intake_forms, routing_drafts, routing_registers)
    for module in modules:
        module.new_document = parsed_per_document
    try:
        return median_ms(render, runs)
    finally:
        for module in modules:
            module.new_document = new_document


def first_form_ms(warm: bool) -> float:
    """CPU ms of form 01 as a fresh process's first document (imports and the golden case ready)."""
    out = subprocess.run([sys.executable, __file__, "--first-form", "warm" if warm else "cold"], capture_output=True,
                         text=True, check=True).stdout
    return float(out)


def first_form(warm: bool) -> None:
    render = forms()["01 receipt"]
    if warm:
        fonts.warm_up(FPDF)
    start = time.process_time()
    render()
    print((time.process_time() - start) * 1000)


def main() -> None:
    if sys.argv[1:2] == ["--first-form"]:
        return first_form(sys.argv[2] == "warm")
    cold, warm = first_form_ms(warm=False), first_form_ms(warm=True)
    print(f"a fresh process's first form 01: {cold:.0f} CPU ms, {warm:.0f} after fonts.warm_up at its start")
    fonts._parsed.clear()  # noqa: SLF001 - the one-time cost is a figure of its own
    start = time.process_time()
    new_document(FPDF)
    first = (time.process_time() - start) * 1000
    print(f"the process's parse of the three DejaVu faces and their three cuts: {first:.0f} CPU ms, once")
    print(f"{'CPU ms per render':24} {'ours':>8} {'bare':>8} {'bare/ours':>10} {'fresh parse':>12} {'lever':>6}")
    ratios = []
    for name, render in forms().items():
        ours = median_ms(render, RUNS)
        baseline = median_ms(bare(text_of(render())), RUNS)
        fresh = fresh_parse_ms(render, max(RUNS // 5, 3))
        ratios.append(baseline / ours)
        print(f"{name:24} {ours:8.1f} {baseline:8.1f} {baseline / ours:10.2f} {fresh:12.1f} {fresh / ours:5.1f}x",
              flush=True)
    print(f"lowest bare/ours: {min(ratios):.2f} (goal ≥ 0.5)")


if __name__ == "__main__":
    sys.exit(main())
