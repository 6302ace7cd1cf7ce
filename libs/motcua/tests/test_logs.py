"""Log lines stay small whatever a message carries: clip() quotes a bounded prefix, and the JSON
formatter that logs.configure installs bounds every field and the whole line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from motcua import logs
from motcua.logs import FIELD_LIMIT, LINE_LIMIT, QUOTE_LIMIT, TRACE_LIMIT, bind, clip

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def log_lines(monkeypatch):
    """The handler logs.configure() installs, writing to a buffer, on the logger "motcua.test"
    (which does not propagate: pytest's own capture would print the 10 MB records)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    logs.configure("test-worker", "INFO")
    (handler,) = root.handlers
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logger = logging.getLogger("motcua.test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield lambda: [line for line in buffer.getvalue().splitlines() if line]
    logger.removeHandler(handler)
    logger.propagate = True


def test_clip_keeps_short_text_and_cuts_long_text_with_a_mark():
    assert clip("abc") == "abc"
    assert clip("x" * QUOTE_LIMIT) == "x" * QUOTE_LIMIT
    cut = clip("x" * 5000, 500)
    assert len(cut) == 500 and cut.endswith("…") and cut.startswith("xxx")


def test_clip_quotes_bytes_and_odd_values_without_raising():
    assert clip(b"\xff\xfe abc") == repr(b"\xff\xfe abc")
    assert len(clip(b"\xff" * TEN_MB)) == QUOTE_LIMIT
    # A lone surrogate (what py-amqp's surrogatepass decoding can produce) still encodes as UTF-8.
    clip("id-\udcff").encode("utf-8")
    assert len(clip({"k": "v" * 10_000, "n": list(range(10_000))})) <= QUOTE_LIMIT
    assert clip(2**63 - 1) == str(2**63 - 1)

    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert clip(Broken()).startswith("<Broken instance")


def test_a_log_line_is_bounded_whatever_it_is_given(log_lines):
    log = logging.getLogger("motcua.test")
    huge = "é" * TEN_MB
    try:
        raise ValueError(huge)
    except ValueError:
        log.error("handler failed: %s", huge, extra={"reason": huge, "body": b"\xff" * TEN_MB}, exc_info=True)
    log.warning("a large extra", extra={"headers": {f"h{n}": "v" * 1000 for n in range(1000)}})
    log.info("small and untouched", extra={"queue": "routing.bim-son"})

    lines = log_lines()
    assert len(lines) == 3
    for line in lines:
        assert len(line) <= LINE_LIMIT
    failed, large, small = (json.loads(line) for line in lines)
    assert failed["level"] == "ERROR" and failed["message"].startswith("handler failed: éé")
    assert len(failed["message"]) <= FIELD_LIMIT and len(failed["reason"]) <= FIELD_LIMIT
    assert failed["body"] == clip(b"\xff" * TEN_MB)
    # The traceback keeps its head and the tail where the error is.
    assert len(failed["exc_info"]) <= TRACE_LIMIT
    assert failed["exc_info"].startswith("Traceback") and "characters cut" in failed["exc_info"]
    assert large["level"] == "WARNING" and large["message"] == "a large extra" and large["log_line_cut"] > LINE_LIMIT
    assert small["message"] == "small and untouched" and small["queue"] == "routing.bim-son"


def test_bound_fields_are_clipped(log_lines):
    with bind(event_id="m" * 10_000, trace_id="t"):
        logging.getLogger("motcua.test").info("inside")
    (line,) = log_lines()
    record = json.loads(line)
    assert len(record["event_id"]) == QUOTE_LIMIT and record["trace_id"] == "t"


_CROSS_THREAD_LOGGING = r'''
import eventlet
eventlet.monkey_patch()
import logging, sys
from eventlet import tpool
from motcua import logs

logs.configure("probe")
handler = logging.getLogger().handlers[0]

def log_from_a_native_thread():
    logging.getLogger("bagit").warning("from a tpool thread")
    return "logged"

handler.acquire()  # a greenlet of the hub is writing a line
pending = eventlet.spawn(tpool.execute, log_from_a_native_thread)
eventlet.sleep(0.3)  # the native thread now waits for the handler's lock
handler.release()
print(pending.wait(), flush=True)
'''


def test_a_native_thread_of_an_eventlet_process_logs_while_a_greenlet_holds_the_handler(tmp_path):
    """A worker logs from eventlet's tpool threads (bagit while a package is built, fontTools while a
    form renders) and from its hub at once. The handler's lock must be a native one: a green lock
    that a native thread waits on is woken by a switch across threads (greenlet.error "Cannot switch
    to a different thread"), the thread never runs again and the worker's offloads hang for good."""
    script = tmp_path / "probe.py"
    script.write_text(_CROSS_THREAD_LOGGING)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.stdout.strip() == "logged", done.stderr[-2000:]
    assert "Cannot switch to a different thread" not in done.stderr
