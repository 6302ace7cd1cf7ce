"""Archive's worker with faults injected from the test side: it kills itself with SIGKILL (a
``kill -9``) once per dossier at each of two moments — after the primary copy is stored and
verified, before the second copy is written; and after both copies are verified, before the
ledger entry is written. A marker file per dossier and moment (in ``MOTCUA_TEST_KILL_DIR``) makes
each fault happen once, so the redelivered message then gets further. Production code carries no
fault point: this wrapper patches the classes in its own process, then runs the real entrypoint.

    python tests/reliability/kill_archive_worker.py

``test_crash.py`` runs it as the argv of the archive worker of the test platform.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # first, as the worker's own module does: what is imported below must see it

import os  # noqa: E402
import runpy  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from archive.adapters.vaults import S3Vault  # noqa: E402
from archive.application.archiving import Archivist  # noqa: E402

MARKERS = Path(os.environ["MOTCUA_TEST_KILL_DIR"])


def _once(moment: str, code: str) -> None:
    marker = MARKERS / f"{code}.{moment}"
    if marker.exists():
        return
    marker.write_text("killed here once\n")
    print(f"fault injected: kill -9 {moment} of {code}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _patch() -> None:
    write, enter = S3Vault.write, Archivist._enter

    def write_then_maybe_die(self: S3Vault, key: str, *args: Any) -> str:
        if self.name == "copy":  # the primary is stored and verified; the copy is not written yet
            _once("between-copies", key.split("/")[2])
        return write(self, key, *args)

    def enter_after_maybe_dying(self: Archivist, uow: Any, command: Any, fields: dict[str, Any]) -> None:
        _once("before-ledger-entry", command.code)  # both copies verified; no entry yet
        return enter(self, uow, command, fields)

    S3Vault.write = write_then_maybe_die
    Archivist._enter = enter_after_maybe_dying


if __name__ == "__main__":
    MARKERS.mkdir(parents=True, exist_ok=True)
    _patch()
    runpy.run_module("archive.entrypoints.worker", run_name="__main__", alter_sys=True)
