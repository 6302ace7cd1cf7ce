"""JSON structured logging with the dossier code, area, receiving unit, event id and trace id bound.

``bind(...)`` adds fields to every log record written inside it (contextvars, so it follows
threads' and greenlets' own contexts). Personal data of citizens is never bound or logged.

Whatever a log line quotes from a message (an id, a reason, a piece of body) goes through
:func:`clip`: a short prefix, never the whole thing. The formatter bounds every line besides
(each field to :data:`FIELD_LIMIT` characters, a traceback to :data:`TRACE_LIMIT`), so no message,
however large, and no library quoting one, can write a log line of megabytes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import reprlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

QUOTE_LIMIT = 200  # what a log line quotes from a message: an id, a reason, a piece of body
FIELD_LIMIT = 4_000  # any one field of a log line
TRACE_LIMIT = 8_000  # a traceback or stack (its head and its tail, where the error is, are kept)
LINE_LIMIT = 32_000  # a whole line; past it the line keeps only its scalar fields, clipped

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _repr.maxlong = QUOTE_LIMIT
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = 8


def clip(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A printable prefix of ``value`` at most ``limit`` characters long, ending in "…" when cut.

    Text stays as it is (lone surrogates escaped, so the result always encodes as UTF-8); bytes
    become their ``repr`` (undecodable bytes never raise); anything else its bounded ``repr``.
    Only a prefix of a long value is ever looked at, so clipping 10 MB costs nothing."""
    limit = max(limit, 1)
    if isinstance(value, str):
        text = value[:limit + 1].encode("utf-8", "backslashreplace").decode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        text = repr(bytes(value[:limit + 1]))
    else:
        try:
            text = _repr.repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not break a log line
            text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """:func:`clip`, with text shown quoted (``'abc'``), as bytes and other values already are."""
    return repr(clip(value, max(limit - 2, 1))) if isinstance(value, str) else clip(value, limit)


def _cut_middle(text: str, limit: int) -> str:
    """Head and tail of a long text (a traceback's error is at its end)."""
    if len(text) <= limit:
        return text
    marker = f"\n… [{len(text) - limit} characters cut] …\n"
    head = max((limit - len(marker)) // 4, 0)
    tail = max(limit - len(marker) - head, 0)
    return text[:head] + marker + (text[-tail:] if tail else "")


BOUND_FIELDS = ("service", "dossier_code", "area", "unit", "event_id", "trace_id", "request_id")
_bound: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("motcua_log_fields", default=None)


@contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    unknown = set(fields) - set(BOUND_FIELDS)
    if unknown:
        raise ValueError(f"not a bound log field: {sorted(unknown)}")
    token = _bound.set({**(_bound.get() or {}), **{k: clip(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _bound.reset(token)


class _BoundFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_bound.get() or {}).items():
            setattr(record, key, value)
        return True


class BoundedJsonFormatter(JsonFormatter):
    """JSON lines whose fields are bounded: text fields to FIELD_LIMIT characters, tracebacks to
    TRACE_LIMIT, bytes quoted by :func:`clip`, and the whole line to LINE_LIMIT."""

    def process_log_record(self, log_data):
        for key, value in list(log_data.items()):
            if isinstance(value, str):
                if key in ("exc_info", "stack_info"):
                    log_data[key] = _cut_middle(value, TRACE_LIMIT)
                elif len(value) > FIELD_LIMIT:
                    log_data[key] = clip(value, FIELD_LIMIT)
            elif isinstance(value, bytes | bytearray | memoryview):
                log_data[key] = clip(value)
        return super().process_log_record(log_data)

    def serialize_log_record(self, log_data) -> str:
        line = super().serialize_log_record(log_data)
        # Still too long (JSON escapes non-ASCII text six-fold; an extra may be a large dict):
        # cut every field shorter, a quarter at a time, until the line fits.
        size, limit = len(line), FIELD_LIMIT
        while len(line) > LINE_LIMIT and limit > QUOTE_LIMIT // 4:
            limit //= 4
            line = super().serialize_log_record(
                {key: _shorter(key, value, limit) for key, value in log_data.items()} | {"log_line_cut": size})
        if len(line) <= LINE_LIMIT:
            return line
        return json.dumps({key: clip(log_data.get(key)) for key in ("time", "level", "name", "message")}
                          | {"log_line_cut": size})


def _shorter(key: str, value: object, limit: int) -> object:
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, str) and key in ("exc_info", "stack_info"):
        return _cut_middle(value, limit * 2)
    return clip(value, limit)


def _native_rlock():
    """An OS-thread RLock when eventlet has monkey-patched this process (a worker), else None.

    A worker logs from its hub and from eventlet's tpool threads (bagit while a package is built,
    fontTools while a form renders). The handler's lock made after the patch is a green one; a
    native thread that waits on it is woken by a switch across threads (greenlet.error "Cannot
    switch to a different thread"), never runs again, and the worker's offloads hang for good. A
    native lock is safe on the hub too: writing a line never yields to another greenlet."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None or not patcher.is_monkey_patched("thread"):
        return None
    return patcher.original("threading").RLock()


def configure(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process; call once at start-up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BoundedJsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                              rename_fields={"asctime": "time", "levelname": "level"},
                                              static_fields={"service": service}))
    handler.addFilter(_BoundFields())
    handler.lock = _native_rlock() or handler.lock
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kombu", "amqp", "urllib3", "nameko", "eventlet", "fontTools", "bagit"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
