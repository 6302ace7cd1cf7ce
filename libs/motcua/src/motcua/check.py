"""Smoke check of a service's processes, without connecting to anything: what an image build runs
(and anyone may run) to prove that every process of the image can start.

    python -m motcua.check intake              # every process of the service (api, worker)
    python -m motcua.check intake worker       # one

For each process: its module imports (the protobuf code, the adapters, the settings class), the
settings load from the environment, the catalog's areas are read, the fonts the PDFs are set in
open and render Vietnamese letters (when the service renders PDFs), and a worker's nameko service
class is built for its areas. The operators' CLI (``python -m motcua.operate``) must import too.
Exit status 0 when all passed; each failure is printed on its own line.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable
from typing import Any

# Nothing of the platform is imported before the process's own module: a worker's module
# monkey-patches eventlet first thing, as it does when it starts in its pod.
PROCESSES = ("api", "worker")
TRUETYPE_MAGIC = (b"\x00\x01\x00\x00", b"true")


def processes_of(service: str) -> list[str]:
    return [p for p in PROCESSES if importlib.util.find_spec(f"{service}.entrypoints.{p}") is not None]


def settings_class(service: str) -> Any:
    """The service's settings class (``<service>.config``), else the platform's."""
    from motcua.settings import PlatformSettings

    try:
        importlib.import_module(f"{service}.config")
    except ModuleNotFoundError as exc:
        if exc.name not in (service, f"{service}.config"):
            raise
    found = [cls for cls in _subclasses(PlatformSettings) if cls.service == service]
    return found[-1] if found else PlatformSettings


def _subclasses(cls: type) -> list[type]:
    result = []
    for sub in cls.__subclasses__():
        result += [sub, *_subclasses(sub)]
    return result


def check_fonts() -> None:
    """The DejaVu faces exist and are TrueType; with fpdf2 installed, a page in Vietnamese renders."""
    from motcua.fonts import FACES, FONT_DIR

    for file in FACES.values():
        with open(FONT_DIR / file, "rb") as face:
            if face.read(4) not in TRUETYPE_MAGIC:
                raise ValueError(f"{FONT_DIR / file} is not a TrueType font")
    if importlib.util.find_spec("fpdf") is None:
        return
    from fpdf import FPDF

    from motcua.fonts import FONT, new_document

    pdf = new_document(FPDF)
    pdf.add_page()
    pdf.set_font(FONT, size=12)
    pdf.cell(text="Ủy ban nhân dân tỉnh Thanh Hóa — Phiếu tiếp nhận hồ sơ")
    if not bytes(pdf.output()).startswith(b"%PDF"):
        raise ValueError("fpdf2 did not produce a PDF")


def check_process(service: str, process: str) -> None:
    module = importlib.import_module(f"{service}.entrypoints.{process}")  # first: see above
    settings = settings_class(service).load()
    areas = settings.served_areas()
    if not areas:
        raise ValueError("no area to serve (MOTCUA_AREAS empty and the catalog has none)")
    if process == "worker":
        from motcua.worker import build_service

        factory = getattr(module, "make_runtime", None)
        build_service(service, settings, factory or (lambda s: None))


def run_checks(service: str, processes: list[str]) -> list[str]:
    failures = []
    steps: list[tuple[str, Callable[[], object]]] = [(f"{service} {p}", lambda p=p: check_process(service, p))
                                                     for p in processes]
    steps += [("fonts", check_fonts), ("operator CLI", lambda: importlib.import_module("motcua.operate"))]
    for label, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the exit status says it
            failures.append(f"FAILED {label}: {type(exc).__name__}: {exc}")
        else:
            print(f"ok {label}", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    service, wanted = args[0], args[1:]
    processes = wanted or processes_of(service)
    if not processes:
        print(f"FAILED {service}: no process module ({service}.entrypoints.api or .worker)")
        return 1
    if len(processes) > 1:  # each process in a fresh interpreter, as it starts in its pod
        codes = [subprocess.run([sys.executable, "-m", "motcua.check", service, p], check=False).returncode
                 for p in processes]
        return max(codes)
    failures = run_checks(service, processes)
    for failure in failures:
        print(failure, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
