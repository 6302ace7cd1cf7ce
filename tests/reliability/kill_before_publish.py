"""A service's api process with a fault injected from the test side: right after a write is
committed, before the messages it added are published, the process kills itself with SIGKILL (a
``kill -9`` at the worst moment for the outbox). Production code carries no fault point; this
wrapper patches the outbox in its own process, then runs the service's real api entrypoint.

    python tests/reliability/kill_before_publish.py intake

``test_crash.py`` runs it as the argv of an extra api process of the test platform.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Collection as Ids
from typing import Any

from motcua.messaging import outbox


def _kill_before_publishing(flush: Any) -> Any:
    def kill_then_flush(self: outbox.Outbox, collection: Any, written: dict[str, Any], ids: Ids[str]) -> bool:
        if any(entry["id"] in ids for entry in written.get(outbox.OUTBOX) or []):
            print("fault injected: killing this process after the commit, before publishing", file=sys.stderr,
                  flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return flush(self, collection, written, ids)
    return kill_then_flush


def main(service: str) -> int:
    outbox.Outbox.flush = _kill_before_publishing(outbox.Outbox.flush)
    os.environ["MOTCUA_API_PROCESSES"] = "1"  # the patch lives in this process: serve here, not in children
    return importlib.import_module(f"{service}.entrypoints.api").main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
